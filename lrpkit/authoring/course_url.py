"""Where a notebook outside the kit's folder gets the kit (Colab, a link): the one setting.

Instructors: publish the student bundle (``make bundle``; it holds a pyproject.toml, so pip
can install it) as the course repository on GitHub, set REPOSITORY and BRANCH below, then run
``python -m lrpkit.authoring.course_url``: it writes the install URL into the notebooks' install
cell
and their "Open in Colab" badges (in the solutions, then the exercises generated from them).
To hand out a wheel instead (``pip wheel --no-deps dist/student-bundle``), put its URL in
WHEEL_URL; the badges still point at REPOSITORY.

The install cell (each notebook's first code cell) installs the kit and fetches castle.jpg
where ``utils`` cannot be imported, and does nothing where it can. Tests point it elsewhere
with the environment variables LRPKIT_KIT_URL and LRPKIT_CASTLE_URL.
"""

import argparse
import re
import sys

import nbformat

from lrpkit.layout import SHIPPED

#: the course repository on GitHub (owner/name) that holds the student bundle, and its branch
REPOSITORY = "your-course/lrp-exercises"
BRANCH = "main"
#: a wheel to install instead of the repository ("" to install the repository)
WHEEL_URL = ""

INSTALL_TAG = "install"
BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_PREFIX = "[![Open In Colab]"


def kit_url():
    """What the install cell pip-installs: the wheel, or the repository's branch as a zip."""
    return WHEEL_URL or f"https://github.com/{REPOSITORY}/archive/refs/heads/{BRANCH}.zip"


def colab_url(notebook):
    """Colab's link to a student notebook of the course repository (notebooks at its top)."""
    return f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/{notebook}"


def badge(notebook):
    return f"{BADGE_PREFIX}({BADGE})]({colab_url(notebook)})"


def install_cell(url=None):
    """The source of the notebooks' first code cell."""
    setting = f'KIT_URL = "{url or kit_url()}"'
    if len(setting) > 100:  # ruff's line length
        setting += "  # noqa: E501"
    return f"""\
# Colab, or this notebook opened on its own: install the course kit (utils, checks) and
# fetch castle.jpg. Where the kit is installed already, this cell does nothing.
import importlib.util
import os
import subprocess
import sys

{setting}
if importlib.util.find_spec("utils") is None:
    url = os.environ.get("LRPKIT_KIT_URL", KIT_URL)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", url], check=True)
    importlib.invalidate_caches()
    import utils

    utils.castle_path(os.environ.get("LRPKIT_CASTLE_URL", utils.CASTLE_URL))"""


def install_cell_index(nb):
    """Index of the notebook's install cell, or None."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and INSTALL_TAG in cell.metadata.get("tags", []):
            return index
    return None


def with_install_cell(nb, url=None):
    """The notebook with its install cell (tagged install, grade-skip) up to date, placed
    before the first code cell; True as second value when something changed."""
    source = install_cell(url)
    index = install_cell_index(nb)
    if index is not None:
        changed = nb.cells[index].source != source
        nb.cells[index].source = source
        return nb, changed
    first = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [INSTALL_TAG, "grade-skip"]})
    nb.cells.insert(first, cell)
    return nb, True


def with_badge(nb, notebook):
    """The notebook with an "Open in Colab" badge (for the student notebook of that name) as
    the first line of its first markdown cell, replacing an older badge; True as second
    value when something changed."""
    cell = next((c for c in nb.cells if c.cell_type == "markdown"), None)
    if cell is None:
        cell = nbformat.v4.new_markdown_cell("")
        nb.cells.insert(0, cell)
    lines = cell.source.split("\n")
    if lines[0].startswith(BADGE_PREFIX):
        lines = lines[2:] if len(lines) > 1 and not lines[1].strip() else lines[1:]
    source = "\n".join([badge(notebook), "", *lines]).rstrip("\n")
    changed = cell.source != source
    cell.source = source
    return nb, changed


def student_pyproject(text):
    """The kit's pyproject.toml for the student bundle: the same project, dependencies and
    package data, packaging only what the bundle holds (utils, lrpkit, data/reference)."""
    shipped = ["lrpkit", *(p.replace("/", ".") for p in SHIPPED if not p.endswith(".py"))]
    listed = ", ".join(f'"{name}"' for name in (*shipped, "data.reference"))
    return re.sub(
        r"^packages = \[.*?\]$",
        f"packages = [{listed}]  # the student bundle's",
        text,
        count=1,
        flags=re.M | re.S,
    )


def main(argv=None):
    """Write the setting into the solution notebooks (install cell, badge), then the
    exercises generated from them."""
    argparse.ArgumentParser(
        prog="python -m lrpkit.authoring.course_url",
        description="write the course's install URL (REPOSITORY, BRANCH, WHEEL_URL in "
        "lrpkit/authoring/course_url.py) into the notebooks' install cell and Colab badges, in the "
        "solutions and the exercises generated from them",
        allow_abbrev=False,
    ).parse_args(argv)
    from lrpkit.authoring import student

    for path in sorted(student.SOLUTIONS.glob("*.ipynb")):
        nb, cell_changed = with_install_cell(student.read(path))
        nb, badge_changed = with_badge(nb, path.name)
        if cell_changed or badge_changed:
            nbformat.write(nb, str(path))
            print(f"wrote {path}")
    for path in student.write_exercises():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
