"""Code that runs inside the graded kernel, loaded into its cells as text (never imported there).

The graded notebook's first cell holds the text of prelude.py and calls ``_lrpkit_prelude``;
the cell before each check holds the text of guard.py and calls ``_lrpkit_guard``. The
kernel cannot import these from the kit (it has only its sandbox's copies of the student
files), and the grader reads them once, before any student code runs.
"""
