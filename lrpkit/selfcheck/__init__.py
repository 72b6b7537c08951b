"""The self-checks students get (shipped): run their code on a configuration (observe),
compare with expected results (judge), one verdict line per check (checks)."""
