"""Exercise Sheet 12: the self-checks (``lrpkit.checks``) and the gamma explorer
(``lrpkit.explorer``). Nothing is imported here, so ``from lrpkit import checks`` loads only
the checks.
"""
