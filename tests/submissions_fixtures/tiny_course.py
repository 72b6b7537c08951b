"""A tiny course for the grading and student-version tests (not the real exercises).

It follows the kit's conventions -- solution notebooks ex3_gradient_x_input.ipynb and ex4_lrp.ipynb
with ``# BEGIN SOLUTION: ...`` regions, check cells tagged ``check`` + ``ex3``/``ex4`` that call
``lrpkit.selfcheck.checks`` and print one PASS/FAIL line, references in data/reference/ -- but the
"model"
is a 3 x 4 numpy matrix, so a graded kernel needs only numpy and starts in about a second.
``build(root)`` writes the course and executes its solution notebooks to store the verdicts.
"""

import json
import os
from pathlib import Path

import nbformat
import numpy
from nbclient import NotebookClient

#: the course's lrpkit/__init__.py: `from lrpkit import checks` as in the kit
TINY_INIT = '''"""Tiny course."""
import importlib


def __getattr__(name):
    if name == "checks":
        return importlib.import_module("lrpkit.selfcheck.checks")
    raise AttributeError(name)
'''
CHECKS = '''\
"""Self-checks of the tiny course: compare with data/reference/tiny.json."""

import json
from pathlib import Path

import numpy

REFERENCE = Path(__file__).resolve().parents[2] / "data" / "reference" / "tiny.json"


class Linear:
    """f(X) = W X: the tiny course's model."""

    def __init__(self, W):
        self.W = numpy.asarray(W, dtype=float)

    def __call__(self, X):
        return self.W @ X


def _setup():
    ref = json.loads(REFERENCE.read_text())
    return ref, Linear(ref["W"]), numpy.asarray(ref["X"], dtype=float)


def _call(what, f, *args):
    try:
        return f(*args), None
    except NotImplementedError as error:
        return None, f"FAIL {what}: still raises NotImplementedError ({error})"
    except Exception as error:  # the student's code: any error is a verdict
        return None, f"FAIL {what} raised {type(error).__name__}: {error}"


def check_reference():
    _setup()
    print("PASS check_reference: the reference is there")


def check_gradient_x_input(gradient_x_input):
    ref, model, X = _setup()
    R, fail = _call("gradient_x_input", gradient_x_input, model, X, 1)
    if fail:
        print(fail)
    elif numpy.shape(R) != X.shape:
        print(f"FAIL gradient_x_input: R has shape {numpy.shape(R)}, X has {X.shape}")
    elif numpy.allclose(R, ref["R3"]):
        print("PASS gradient_x_input: R equals the reference")
    else:
        print("FAIL gradient_x_input: wrong values; hint: multiply the gradient by the input")


def check_conv_weights(Conv):
    ref, model, X = _setup()
    layer, fail = _call("Conv", Conv, model, 0.25)
    if fail:
        print(fail)
    elif numpy.allclose(getattr(layer, "pW", None), ref["pW"]):
        print("PASS Conv: the gamma weights are right")
    else:
        print("FAIL Conv: pW must be W + gamma * max(0, W); hint: gamma only on positive weights")


def check_conv_relevance(Conv):
    ref, model, X = _setup()
    layer, fail = _call("Conv", Conv, model, 0.25)
    R, fail = (None, fail) if fail else _call("Conv.relevance", layer.relevance, X, 1)
    if fail:
        print(fail)
    elif numpy.allclose(R, ref["R4"]):
        print("PASS Conv.relevance: R equals the reference")
    else:
        print("FAIL Conv.relevance: wrong values; hint: R = X * pW[c] / (pW[c] @ X) * z[c]")
'''

GXI = """\
def gradient_x_input(model, X, c):
    \"\"\"Gradient x Input of output c: R = X * df_c/dX.\"\"\"
    # BEGIN SOLUTION: Exercise 3 -- implement gradient_x_input(model, X, c)
    grad = model.W[c]
    return X * grad
    # END SOLUTION"""

CONV = """\
class Conv:
    \"\"\"The gamma rule on a linear layer.\"\"\"

    def __init__(self, layer, gamma):
        self.layer = layer
        # BEGIN SOLUTION: Exercise 4 -- implement Conv: pW = W + gamma * max(0, W)
        self.pW = layer.W + gamma * numpy.clip(layer.W, 0, None)
        # END SOLUTION

    def relevance(self, X, c):
        # BEGIN SOLUTION: Exercise 4 -- implement Conv.relevance
        zp = self.pW[c] @ X
        return X * self.pW[c] / zp * self.layer(X)[c]
        # END SOLUTION"""

DISPLAY = "print('a figure nobody grades')"
CHECK3 = "from lrpkit import checks\n\nchecks.check_gradient_x_input(gradient_x_input)"
CHECK4A = "from lrpkit import checks\n\nchecks.check_conv_weights(Conv)"
CHECK4B = "from lrpkit import checks\n\nchecks.check_conv_relevance(Conv)"


def cell(kind, source, tags=()):
    new = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
    made = new(source)
    if tags:
        made.metadata["tags"] = list(tags)
    return made


def ex3_cells():
    return [
        cell(
            "md", "# Exercise 3: Gradient x Input (25 P)\n\n**Task:** implement Gradient x Input."
        ),
        cell("code", "import numpy\n\nfrom lrpkit import checks"),
        cell("code", "checks.check_reference()", ["check", "ex3"]),  # given code: no points
        cell("code", GXI),
        cell("code", CHECK3, ["check", "ex3"]),
        cell("md", "The solution multiplies the gradient by the input.", ["solution"]),
    ]


def ex4_cells():
    return [
        cell("md", "# Exercise 4: LRP (25 P)\n\n**Task:** implement `Conv`."),
        cell("code", "import numpy\n\nfrom lrpkit import checks"),
        cell("code", CONV),
        cell("code", CHECK4A, ["check", "ex4"]),
        cell("code", CHECK4B, ["check", "ex4"]),
        cell("code", DISPLAY, ["grade-skip"]),
    ]


def notebook(cells):
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nb


def references():
    rng = numpy.random.default_rng(12)
    W, X = rng.normal(size=(3, 4)), rng.uniform(0.5, 1.5, size=4)
    pW = W + 0.25 * numpy.clip(W, 0, None)
    R4 = X * pW[1] / (pW[1] @ X) * (W @ X)[1]
    return {
        "W": W.tolist(),
        "X": X.tolist(),
        "R3": (X * W[1]).tolist(),
        "pW": pW.tolist(),
        "R4": R4.tolist(),
    }


def kernel_env(root):
    """Environment in which `lrpkit` and `utils` are the tiny course's, not the kit's."""
    return dict(os.environ, PYTHONPATH=str(root))


def execute(nb, root):
    client = NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(root)}}
    )
    client.execute(env=kernel_env(root))
    return nb


def build(root):
    """Write the tiny course into root; returns root."""
    root = Path(root)
    (root / "lrpkit" / "selfcheck").mkdir(parents=True, exist_ok=True)
    (root / "lrpkit" / "__init__.py").write_text(TINY_INIT)
    (root / "lrpkit" / "selfcheck" / "__init__.py").write_text("")
    (root / "lrpkit" / "selfcheck" / "checks.py").write_text(CHECKS)
    (root / "data" / "reference").mkdir(parents=True, exist_ok=True)
    (root / "data" / "reference" / "tiny.json").write_text(json.dumps(references()))
    solutions = root / "notebooks" / "solutions"
    solutions.mkdir(parents=True, exist_ok=True)
    for name, cells in (
        ("ex3_gradient_x_input.ipynb", ex3_cells()),
        ("ex4_lrp.ipynb", ex4_cells()),
    ):
        nb = execute(notebook(cells), root)
        nbformat.write(nb, str(solutions / name))
    return root
