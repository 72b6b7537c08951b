"""The notebooks' install cell: Colab, or a notebook opened on its own, installs the kit.

Offline: the student bundle's wheel and castle.jpg are served on 127.0.0.1, and the exercise
notebook runs in an empty folder with a fresh venv that has torch & co. (from this venv's
site-packages, added by a .pth file) but not the kit.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
from local_http import closed_url, serve
from nbclient import NotebookClient

from lrpkit import tasks
from lrpkit.authoring import course_url, student

ROOT = Path(__file__).resolve().parents[1]


def notebooks(folder):
    return sorted((ROOT / "notebooks" / folder).glob("*.ipynb"))


def first_code_cell(nb):
    return next(cell for cell in nb.cells if cell.cell_type == "code")


@pytest.mark.parametrize("path", notebooks("solutions") + notebooks("exercises"), ids=str)
def test_first_code_cell_is_the_install_cell_of_the_setting(path):
    cell = first_code_cell(student.read(path))
    assert cell.source == course_url.install_cell(), (
        "the install cell differs from lrpkit/authoring/course_url.py's setting: run "
        "`python -m lrpkit.authoring.course_url`"
    )
    assert {"install", "grade-skip"} <= set(cell.metadata.get("tags", []))
    assert course_url.kit_url() in cell.source


@pytest.mark.parametrize("path", notebooks("solutions") + notebooks("exercises"), ids=str)
def test_notebooks_carry_their_colab_badge(path):
    first = next(c for c in student.read(path).cells if c.cell_type == "markdown")
    assert first.source.splitlines()[0] == course_url.badge(path.name)
    assert course_url.colab_url(path.name) == (
        f"https://colab.research.google.com/github/{course_url.REPOSITORY}/blob/"
        f"{course_url.BRANCH}/{path.name}"
    )


def test_urls_follow_the_one_setting(monkeypatch):
    monkeypatch.setattr(course_url, "REPOSITORY", "uni-x/xai-course")
    monkeypatch.setattr(course_url, "BRANCH", "ws2026")
    zip_url = "https://github.com/uni-x/xai-course/archive/refs/heads/ws2026.zip"
    assert course_url.kit_url() == zip_url
    assert f'KIT_URL = "{zip_url}"' in course_url.install_cell()
    assert "github/uni-x/xai-course/blob/ws2026/ex4_lrp.ipynb" in course_url.badge("ex4_lrp.ipynb")
    monkeypatch.setattr(course_url, "WHEEL_URL", "https://example.org/" + "w" * 90 + ".whl")
    cell = course_url.install_cell()
    assert course_url.WHEEL_URL in cell and "# noqa: E501" in cell  # a long URL passes ruff


def test_badge_replaces_an_older_one():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title\n\ntext")])
    assert course_url.with_badge(nb, "ex3.ipynb")[1]
    assert not course_url.with_badge(nb, "ex3.ipynb")[1]
    assert nb.cells[0].source == course_url.badge("ex3.ipynb") + "\n\n# Title\n\ntext"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    course_url.with_badge(nb, "ex3.ipynb")  # no markdown cell: a new one on top
    assert [c.cell_type for c in nb.cells] == ["markdown", "code"]


def test_install_cell_goes_before_the_first_code_cell_once():
    cells = [nbformat.v4.new_markdown_cell("# T"), nbformat.v4.new_code_cell("import utils")]
    nb = nbformat.v4.new_notebook(cells=cells)
    assert course_url.with_install_cell(nb)[1]
    assert not course_url.with_install_cell(nb)[1]
    assert [c.source for c in nb.cells] == ["# T", course_url.install_cell(), "import utils"]


def run_install_cell(python, cwd, **env):
    return subprocess.run(
        [str(python), "-c", course_url.install_cell()],
        cwd=cwd,
        env=dict(os.environ, LRPKIT_KIT_URL=closed_url("kit.whl"), **env),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_install_cell_does_nothing_where_the_kit_is_installed(tmp_path):
    """Here the kit is installed (editable): nothing is installed nor fetched (the URLs
    lead nowhere, so any attempt would fail)."""
    done = run_install_cell(sys.executable, tmp_path, LRPKIT_CASTLE_URL=closed_url("castle.jpg"))
    assert done.returncode == 0 and done.stdout == "", done.stderr


@pytest.fixture(scope="module")
def served(tmp_path_factory, castle_file):
    """The student bundle's wheel (what students install) and castle.jpg, on 127.0.0.1."""
    tmp = tmp_path_factory.mktemp("served")
    bundle = tmp / "bundle"
    student.bundle(bundle)
    site = tmp / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps"]
        + ["--no-build-isolation", "--no-index", "-w", site, bundle],
        check=True,
        timeout=600,
    )
    (wheel,) = site.glob("*.whl")
    shutil.copyfile(castle_file, site / "castle.jpg")
    with serve(site) as url:
        yield f"{url}/{wheel.name}", f"{url}/castle.jpg"


@pytest.fixture(scope="module")
def kitless(tmp_path_factory):
    """A venv with this venv's packages (torch, jupyter, pip) behind its own, without the kit:
    a .pth line adds this venv's site-packages as a plain path, so the kit's editable finder
    (a .pth there) is not installed."""
    venv = tmp_path_factory.mktemp("kitless") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    python = tasks.venv_python(venv)
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "kit-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python, Path(site)


def spec(python, name, cwd):
    code = f"import importlib.util; print(importlib.util.find_spec({name!r}) is not None)"
    out = subprocess.run([python, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
    return out.stdout.strip()


@pytest.mark.slow
def test_exercise_installs_the_kit_where_it_is_missing(served, kitless, tmp_path, monkeypatch):
    """Ex. 3 in an empty folder, with a kernel that cannot import utils: the install cell
    installs the wheel and fetches castle.jpg, then the given code and the check of X pass;
    run again, it does nothing."""
    python, site = kitless
    folder = tmp_path / "alone"
    folder.mkdir()
    assert spec(python, "utils", folder) == "False" and spec(python, "torch", folder) == "True"
    wheel_url, castle_url = served
    kernels = tmp_path / "jupyter" / "kernels" / "kitless"
    kernels.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec_file = {"argv": argv, "display_name": "no kit", "language": "python"}
    (kernels / "kernel.json").write_text(json.dumps(spec_file))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))

    nb = student.read(ROOT / "notebooks" / "exercises" / "ex3_gradient_x_input.ipynb")
    first_check = next(i for i, c in enumerate(nb.cells) if "check" in student.tags(c))
    nb.cells = nb.cells[: first_check + 1]
    env = dict(
        os.environ,
        LRPKIT_KIT_URL=wheel_url,
        LRPKIT_CASTLE_URL=castle_url,
        PIP_NO_INDEX="1",  # offline: the wheel's dependencies are all there already
        VGG16_WEIGHTS="standin",
        MPLBACKEND="Agg",
    )
    client = NotebookClient(
        nb, timeout=600, kernel_name="kitless", resources={"metadata": {"path": str(folder)}}
    )
    client.execute(env=env)

    assert (site / "utils.py").is_file() and (site / "data" / "reference" / "meta.json").is_file()
    assert (site / "data" / "castle.jpg").is_file(), "castle.jpg fetched beside the kit"
    assert (site / "lrpkit" / "selfcheck" / "checks.py").is_file()
    assert not (site / "lrpkit" / "reference").exists(), "the reference solution is not shipped"
    verdict = "".join(o.get("text", "") for o in nb.cells[first_check].outputs)
    assert verdict.startswith("PASS check_input"), verdict
    assert list(folder.iterdir()) == []  # nothing written where the notebook is

    again = run_install_cell(python, folder, LRPKIT_CASTLE_URL=closed_url("castle.jpg"))
    assert again.returncode == 0 and again.stdout == "", again.stderr
