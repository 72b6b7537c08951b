"""Which exercise each handed-in notebook holds, and which exercises a submission lost.

An empty, unreadable or missing notebook costs its exercise only: that exercise earns 0 with
the reason ("ex3_gradient_x_input.ipynb is empty") and its checks are not run, while the
other notebooks are graded as usual. A notebook's exercise is the one the intake matched by
its content (``NotebookFile.exercise``), else its file name's: a solution notebook's name, or
a name that begins with the exercise (``ex3_...``). A notebook the intake found to hold
several exercises says so (``"ex3+ex4"``); where a usable notebook's exercise is unknown,
nothing is called lost: its code may hold any.
"""

import re
from pathlib import Path

STEM = re.compile(r"(ex\d+)(?:[^0-9a-z]|$)")
MISSING = " is missing"  # the end of a lost exercise's reason when its notebook is not there


def exercise_of(notebook, names):
    """The exercise of a handed-in notebook ("" when unknown). ``names``: {solution
    notebook's file name: exercise} (``Course.notebooks()``)."""
    if notebook.exercise:
        return notebook.exercise
    if notebook.name in names:
        return names[notebook.name]
    match = STEM.match(Path(notebook.name).stem.lower())
    return match[1] if match else ""


def lost_exercises(sub, course):
    """{exercise: why} of the course's exercises that none of the submission's usable
    notebooks holds: the problem of its own notebook, or that the notebook is missing."""
    names = course.notebooks()
    usable = [nb for nb in sub.files if not nb.problem]
    held = {e for nb in usable for e in exercise_of(nb, names).split("+")}
    if "" in held or not usable:
        return {}
    expected = {exercise: name for name, exercise in names.items()}
    lost = {}
    for exercise in course.exercises:
        if exercise in held:
            continue
        bad = [nb.problem for nb in sub.files if nb.problem and exercise_of(nb, names) == exercise]
        lost[exercise] = "; ".join(bad) or f"{expected[exercise]}{MISSING}"
    return lost


def missing(why):
    """Whether a lost exercise's reason says its notebook was not handed in at all."""
    return why.endswith(MISSING)
