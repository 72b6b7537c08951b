"""Every ``python -m lrpkit.<x>`` entry point prints its help for ``--help`` and changes
nothing, and none takes an abbreviated option (argparse's allow_abbrev is off everywhere)."""

import ast
import contextlib
import hashlib
import io
import runpy
import sys

import pytest

import utils

ROOT = utils.DATA.parent


def entry_points():
    """Modules of lrpkit run as ``python -m``: those with a ``__main__`` block, and packages
    with a ``__main__.py``."""
    found = []
    for path in sorted((ROOT / "lrpkit").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if path.name == "__main__.py":
            found.append(module.removesuffix(".__main__"))
        elif 'if __name__ == "__main__":' in path.read_text(encoding="utf-8"):
            found.append(module)
    return found


def tree_hash(folder):
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def test_the_entry_points_are_found():
    points = entry_points()
    assert {
        "lrpkit.grading",
        "lrpkit.authoring.course_url",
        "lrpkit.authoring.student",
        "lrpkit.tasks",
    } <= set(points)
    assert len(points) >= 12, points


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")
@pytest.mark.parametrize("module", entry_points())
def test_help_prints_help_and_changes_nothing(module, monkeypatch):
    before = tree_hash(ROOT / "notebooks")
    monkeypatch.setattr(sys, "argv", [module, "--help"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        runpy.run_module(module, run_name="__main__", alter_sys=False)
    assert done.value.code in (0, None), out.getvalue()
    assert "usage:" in out.getvalue()
    assert tree_hash(ROOT / "notebooks") == before, f"{module} --help changed the notebooks"


def test_every_argument_parser_refuses_abbreviations():
    """Each ArgumentParser(...) call in lrpkit passes allow_abbrev=False."""
    missing = []
    for path in sorted((ROOT / "lrpkit").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in (
                "ArgumentParser",
                "add_parser",
            ):
                flags = {k.arg: k.value for k in node.keywords}
                value = flags.get("allow_abbrev")
                if not (isinstance(value, ast.Constant) and value.value is False):
                    missing.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not missing, f"ArgumentParser without allow_abbrev=False: {missing}"
