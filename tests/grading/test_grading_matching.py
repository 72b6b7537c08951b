"""Matching handed-in notebooks to exercises by their cells (lrpkit.grading.intake.matching)."""

import json

import nbformat
import pytest

from lrpkit.grading.intake.matching import Exercises, name_words
from lrpkit.layout import EXERCISES, SOLUTIONS

NOTEBOOKS = {
    "ex3": "ex3_gradient_x_input.ipynb",
    "ex4": "ex4_lrp.ipynb",
    "ex5": "ex5_faithfulness.ipynb",
}


@pytest.fixture(scope="module")
def kit():
    return Exercises.from_solutions(SOLUTIONS)


def cells_of(exercise, folder=EXERCISES):
    return json.loads((folder / NOTEBOOKS[exercise]).read_bytes())["cells"]


def notebook(cells):
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells}).encode()


def code(source, tags=()):
    return {"cell_type": "code", "source": source, "metadata": {"tags": list(tags)}}


@pytest.mark.parametrize("exercise", ["ex3", "ex4", "ex5"])
@pytest.mark.parametrize("folder", [EXERCISES, SOLUTIONS], ids=["exercise", "solution"])
def test_each_notebook_is_its_exercise_under_any_name(kit, exercise, folder):
    data = notebook(cells_of(exercise, folder))
    for name in (NOTEBOOKS[exercise], "Copy of notes (1).ipynb", "ex9.ipynb"):
        match = kit.match(name, data)
        assert (match.exercise, match.how) == (exercise, "content"), name


def test_untagged_cells_and_a_copied_function_keep_a_notebook_its_exercise(kit):
    cells = [c for c in cells_of("ex4") if c["cell_type"] != "markdown"]
    for cell in cells:
        cell["metadata"] = {}  # Colab dropped the tags
    cells.append(code("def gradient_x_input(model, X, c):\n    return X"))
    assert kit.match("mine.ipynb", notebook(cells)).exercise == "ex4"


def test_one_notebook_with_two_exercises_has_none_but_holds_both(kit):
    match = kit.match("all.ipynb", notebook(cells_of("ex3") + cells_of("ex4")))
    assert (match.exercise, match.how, set(match.held)) == ("", "content", {"ex3", "ex4"})


@pytest.mark.parametrize(
    "name, exercise",
    [
        ("ex3_gradient_x_input.ipynb", "ex3"),
        ("Copy of ex4_lrp (2).ipynb", "ex4"),
        ("ex4_lrp-1.ipynb", "ex4"),
        ("Exercise_5.ipynb", "ex5"),
        ("exercise 3.ipynb", "ex3"),
        ("notes.ipynb", ""),
        ("index3.ipynb", ""),
        ("ex3 and ex4.ipynb", ""),
    ],
)
def test_a_notebook_without_cells_goes_by_its_name(kit, name, exercise):
    for data in (b"", notebook([]), b"{not json"):
        match = kit.match(name, data)
        assert (match.exercise, match.how) == (exercise, "name" if exercise else "")


def test_the_content_outweighs_the_name(kit):
    assert kit.match("ex3_gradient_x_input.ipynb", notebook(cells_of("ex4"))).exercise == "ex4"


def test_features_of_a_notebook_of_two_exercises_go_to_the_check_below_them():
    solution = nbformat.v4.new_notebook()
    solution.cells = [
        nbformat.v4.new_markdown_cell("# Part A"),
        nbformat.v4.new_code_cell("def alpha():\n    pass"),
        nbformat.v4.new_code_cell("checks.check_alpha(alpha)", metadata={"tags": ["check", "ex3"]}),
        nbformat.v4.new_markdown_cell("## Part B"),
        nbformat.v4.new_code_cell("class Beta:\n    pass"),
        nbformat.v4.new_code_cell("checks.check_beta(Beta)", metadata={"tags": ["check", "ex4"]}),
        nbformat.v4.new_code_cell("def shown():\n    pass"),
    ]
    exercises = Exercises.from_notebooks({"both.ipynb": nbformat.writes(solution).encode()})
    assert exercises.features == {
        "ex3": {"heading:part a", "def:alpha", "check:check_alpha"},
        "ex4": {"heading:part b", "def:Beta", "check:check_beta", "def:shown"},
    }
    assert exercises.names == {}  # a notebook of two exercises names neither


def test_name_words_drop_what_copies_add():
    assert name_words("Copy of ex3_gradient_x_input (1).ipynb") == "ex3 gradient x input"
    assert name_words("ex4_lrp-2.ipynb") == "ex4 lrp"
