"""The set-up files agree: requirements.txt and environment.yml (conda, Binder), pyproject's
Python, the installed packages, and the commands the README, Makefile and CI name."""

import os
import re
import subprocess
import sys
from importlib import metadata

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

import utils

ROOT = utils.DATA.parent


def requirements(path):
    """{name: Requirement} of a pip requirements file; ``-r other.txt`` lines are followed."""
    found = {}
    for line in (ROOT / path).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            found.update(requirements(line[3:].strip()))
        elif line:
            req = Requirement(line)
            found[canonicalize_name(req.name)] = req
    return found


def conda_env():
    return yaml.safe_load((ROOT / "environment.yml").read_text())


def conda_pip_requirements():
    (pip,) = [d["pip"] for d in conda_env()["dependencies"] if isinstance(d, dict)]
    return {canonicalize_name(Requirement(r).name): Requirement(r) for r in pip}


def as_text(reqs):
    return {name: str(req.specifier) for name, req in reqs.items()}


def test_environment_yml_pip_list_matches_requirements():
    assert as_text(conda_pip_requirements()) == as_text(requirements("requirements.txt"))


#: the oldest torch / torchvision whose APIs the kit uses: torch.load(mmap=, weights_only=),
#: load_state_dict(assign=) (torch 2.1), torch.device as a context manager (2.0), the weights
#: API VGG16_Weights (torchvision 0.13); torchvision 0.16 is torch 2.1's.
RANGES = {"torch": ">=2.1,<3", "torchvision": ">=0.16,<1"}
#: what CI, `make references` and the stored references use (requirements-lock.txt)
LOCKED = {"torch": "2.14.1", "torchvision": "0.29.1"}


def lock():
    """{name: version} of requirements-lock.txt; every line is name==version."""
    found = {}
    for line in (ROOT / "requirements-lock.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==" and not req.marker and not req.extras, line
            found[canonicalize_name(req.name)] = spec.version
    return found


def lock_python():
    (version,) = re.findall(
        r"^# python (\d+\.\d+)$", (ROOT / "requirements-lock.txt").read_text(), re.M
    )
    return version


def pyproject_dependencies():
    text = (ROOT / "pyproject.toml").read_text()
    (block,) = re.findall(r"^dependencies = \[(.*?)^\]", text, flags=re.M | re.S)
    reqs = [Requirement(r) for r in re.findall(r'"([^"]+)"', block)]
    return {canonicalize_name(r.name): r for r in reqs}


def test_students_get_version_ranges():
    for reqs in (requirements("requirements.txt"), conda_pip_requirements()):
        for name, spec in RANGES.items():
            assert reqs[name].specifier == SpecifierSet(spec), (name, str(reqs[name]))


def test_pyproject_dependencies_are_the_kits_requirements():
    """What pip installs with the kit (Colab's install cell): the ranges of requirements.txt
    for every package that utils, checks and explorer import."""
    deps, reqs = pyproject_dependencies(), requirements("requirements.txt")
    imported = {"torch", "torchvision", "numpy", "opencv-python", "matplotlib", "ipywidgets"}
    assert imported <= set(deps)
    for name, req in deps.items():
        assert str(req.specifier) == str(reqs[name].specifier), name


def applies(req, python=None):
    """Whether a requirement is installed with that Python (default: this one), by its
    environment marker (tomli's python_version < "3.11")."""
    return req.marker is None or req.marker.evaluate({"python_version": python or HERE})


def test_lock_pins_every_requirement_inside_its_range():
    locked = lock()
    for name, version in LOCKED.items():
        assert locked[name] == version, f"CI's lock must hold {name}=={version}"
    for path in ("requirements.txt", "requirements-dev.txt"):
        for name, req in requirements(path).items():
            if not applies(req, lock_python()):
                continue
            assert name in locked, (
                f"{path}: {name} is not in requirements-lock.txt: run `python -m lrpkit.tasks lock`"
            )
            assert req.specifier.contains(locked[name], prereleases=True), (name, locked[name])


def test_lock_holds_the_dependencies_too():
    """The lock pins what the requirements bring (jupyterlab's and torch's dependencies), not
    only the requirements themselves: it has many more lines."""
    locked = lock()
    assert {"jupyter-server", "ipykernel", "pyzmq", "filelock", "sympy"} <= set(locked)
    assert len(locked) > 3 * len(requirements("requirements-dev.txt"))


@pytest.mark.parametrize("path", ["requirements.txt", "requirements-dev.txt"])
def test_every_requirement_is_pinned_or_bounded(path):
    for name, req in requirements(path).items():
        ops = {spec.operator for spec in req.specifier}
        assert ops & {"==", "<", "<=", "~="}, f"{path}: {name} has no upper bound ({req})"


def test_dev_requirements_include_the_kits():
    assert "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text()


SUPPORTED = ("3.10", "3.11", "3.12", "3.13")  # tested by tests/test_portability.py
HERE = f"{sys.version_info.major}.{sys.version_info.minor}"


def test_python_version_agrees():
    text = (ROOT / "pyproject.toml").read_text()
    (requires,) = re.findall(r'^requires-python = "(.+)"$', text, flags=re.M)
    pip = SpecifierSet(requires)
    assert all(v in pip for v in SUPPORTED) and "3.9" not in pip, requires
    assert re.search(r'^target-version = "py310"', text, flags=re.M), "ruff: the oldest Python"
    deps = [d for d in conda_env()["dependencies"] if isinstance(d, str)]
    (python,) = [d for d in deps if d.startswith("python")]
    conda = SpecifierSet(python.removeprefix("python"))
    assert all(v in conda for v in SUPPORTED) and "3.9" not in conda, python
    assert lock_python() in SUPPORTED
    if os.environ.get("CI"):  # CI installs the lock: it runs the lock's Python
        assert lock_python() == HERE


def test_installed_packages_satisfy_the_pins():
    wrong = []
    locked = lock() if lock_python() == HERE else {}
    for name, req in requirements("requirements-dev.txt").items():
        if not applies(req):
            continue
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{name}: not installed")
            continue
        # torch's CPU/CUDA wheels carry a local label (2.14.1+cpu): compare the release.
        if not req.specifier.contains(version.split("+")[0], prereleases=True):
            wrong.append(f"{name} {version} does not satisfy {req}")
    for name, version in locked.items():  # with the lock's Python, setup installs the lock
        try:
            here = metadata.version(name).split("+")[0]
        except metadata.PackageNotFoundError:
            continue  # a platform's dependency (nvidia-* on Linux) elsewhere
        if here != version:
            wrong.append(f"{name} {here} is not the lock's {version}")
    assert not wrong, "run `make setup` again: " + "; ".join(wrong)


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["tests", "outside"])
def test_utils_imports_without_path_edits(folder, tmp_path):
    # The kit is installed editable: `import utils` works from any folder (notebooks/ too),
    # not only from the repo root, with no sys.path edits.
    cwd = tmp_path if folder == "outside" else ROOT / folder
    done = subprocess.run(
        [sys.executable, "-c", "import utils, lrpkit; print(utils.__file__)"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(ROOT / "utils.py")


# ---------------------------------------------------------------------------
# commands: Makefile, CI, README
# ---------------------------------------------------------------------------


def make_targets():
    return set(re.findall(r"^([A-Za-z][\w-]*):", (ROOT / "Makefile").read_text(), flags=re.M))


def make_recipe(target):
    text = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{target}:(.*)\n((?:\t.*\n?)*)", text, flags=re.M)
    assert match, f"no `{target}` target in the Makefile"
    return match.group(1), match.group(2)


def test_ci_runs_the_readme_test_command():
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert "make test" in [line.strip() for line in lines]


def test_make_test_sets_up_lints_and_tests():
    deps, recipe = make_recipe("test")
    assert {"setup", "lint"} <= set(deps.split())
    assert "pytest" in recipe
    _, lint_recipe = make_recipe("lint")
    assert "ruff check" in lint_recipe


def test_make_demo_runs_the_demo():
    deps, recipe = make_recipe("demo")
    assert "setup" in deps.split()
    assert "-m lrpkit.demo" in recipe and "figures/castle.png" in recipe


def test_make_regenerate_makes_references_then_solutions_then_exercises():
    """docs/development.md's one command after changing the sheet: the order matters (the
    solutions' verdicts need the new references, the exercises the new solutions)."""
    deps, recipe = make_recipe("regenerate")
    assert deps.split() == ["references"]
    solutions = recipe.index("-m lrpkit.authoring.solutions")
    assert recipe.index("-m lrpkit.authoring.student exercises") > solutions


def test_readme_commands_exist():
    """The README names the fresh-machine commands and the weights; the students' guide how to
    set up without make (tests/test_docs.py checks that every command named exists)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    students = (ROOT / "docs" / "students.md").read_text(encoding="utf-8")
    # Commands: `make x` inline, a code line starting with make, or VAR=value make x.
    named = set(re.findall(r"(?:^|`|\w=\S*\s)make ([a-z][\w-]*)", readme, flags=re.M))
    assert {"demo", "test", "lab"} <= named
    for phrase in ("make demo", "make test", "python -m lrpkit.tasks demo", "lrpkit.tasks test"):
        assert phrase in readme, f"README should mention {phrase!r}"
    for phrase in ("VGG16_WEIGHTS=standin", "VGG16_WEIGHTS=/path/to/vgg16-397923af.pth"):
        assert phrase in readme and phrase in students, f"README and students.md: {phrase!r}"
    for phrase in ("environment.yml", "pip install --no-deps -e .", "jupyter lab notebooks/"):
        assert phrase in students, f"docs/students.md should mention {phrase!r}"
