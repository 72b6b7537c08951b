"""The instructor's answers, never shipped to students: the reference LRP, the expected
results of the checks, region perturbation."""
