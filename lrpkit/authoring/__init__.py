"""Instructor tools that make what students get: exercise notebooks from the solutions,
the student bundle, the course URL in the notebooks."""
