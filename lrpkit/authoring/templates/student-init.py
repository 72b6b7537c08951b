"""Exercise Sheet 12: the self-checks (``lrpkit.selfcheck``) and the gamma explorer
(``lrpkit.explorer``). ``from lrpkit import checks`` loads only the checks.
"""
