"""The docs name only what exists: in README.md and docs/*.md (their code spans and fenced
blocks), every ``make TARGET`` is a Makefile target, every ``python -m MODULE ...`` an
importable module, and for the kit's own modules its ``--help`` (of the subcommand, where the
command names one) exits 0 and lists every ``--option`` the command gives it; every kit path
and ``lrpkit.`` name they mention exists, and every link within the docs reaches its file and
heading. Each --help runs once, in this process."""

import contextlib
import functools
import importlib
import importlib.util
import io
import re
import runpy
import shlex
import sys

import pytest

from lrpkit.layout import ROOT

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.M | re.S)
SPAN = re.compile(r"`([^`]+)`")
PYTHON = re.compile(r"(?:^|[\s/])(?:python[\d.]*|py)\s+-m\s+([A-Za-z_][\w.]*)(.*)$", re.S)
MAKE = re.compile(r"(?:^|\s)make\s+(.*)$", re.S)


def code(text):
    """The doc's code: each fenced block's lines (backslash continuations joined), then each
    inline code span of the rest."""
    found = []
    for block in FENCE.findall(text):
        found += block.replace("\\\n", " ").splitlines()
    return found + SPAN.findall(FENCE.sub("", text))


def commands(snippet):
    """The commands in a piece of code: comments dropped, split at ``&&``, ``;`` and ``|``."""
    snippet = re.sub(r"(^|\s)#.*", "", snippet)
    return [part.strip() for part in re.split(r"&&|;|\|\|?|\(|\)", snippet) if part.strip()]


def words(rest):
    try:
        return shlex.split(rest)
    except ValueError:  # an unbalanced quote in prose: words are enough here
        return rest.split()


@functools.cache
def named():
    """{doc name: ([make target, ...], [(module, (word, ...)), ...])}."""
    found = {}
    for path in DOCS:
        targets, modules = [], []
        for snippet in code(path.read_text(encoding="utf-8")):
            for command in commands(snippet):
                if match := PYTHON.search(command):
                    modules.append((match.group(1).rstrip("."), tuple(words(match.group(2)))))
                elif match := MAKE.search(command):
                    for word in words(match.group(1)):
                        if not re.fullmatch(r"[a-z][\w-]*", word):
                            break  # VAR=value, [OPTIONAL], an option: the targets end
                        targets.append(word)
        found[path.relative_to(ROOT).as_posix()] = (targets, modules)
    return found


def makefile_targets():
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w-]*):", text, flags=re.M))


@functools.cache
def help_text(module, *args):
    """(exit status, output) of ``python -m module *args --help``, run in this process."""
    out = io.StringIO()
    argv = sys.argv
    sys.argv = [module, *args, "--help"]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            runpy.run_module(module, run_name="__main__", alter_sys=False)
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    finally:
        sys.argv = argv
    return code, out.getvalue()


def usage_of(module, args):
    """The --help of the command: of its subcommand when the first word is one (its usage
    line then names it after the module), else of the module."""
    plain = [a for a in args if not a.startswith("-")]
    if plain and re.fullmatch(r"[a-z][\w-]*", plain[0]) and args[0] == plain[0]:
        status, text = help_text(module, plain[0])
        first = text.partition("usage:")[2].splitlines()[:1]
        if status == 0 and first and f"{module} {plain[0]} " in first[0] + " ":
            return f"{module} {plain[0]}", status, text
    return module, *help_text(module)


def test_the_docs_are_found_and_name_commands():
    docs = named()
    assert {"README.md", "docs/instructors.md", "docs/students.md", "docs/development.md"} <= set(
        docs
    )
    assert {"demo", "test"} <= set(docs["README.md"][0])
    assert ("lrpkit.tasks", ("demo",)) in docs["README.md"][1]
    assert {"grade", "bundle", "regenerate"} <= {t for ts, _ in docs.values() for t in ts}


def test_every_make_target_the_docs_name_exists():
    missing = {
        f"{doc}: make {t}"
        for doc, (targets, _) in named().items()
        for t in targets
        if t not in makefile_targets()
    }
    assert not missing, f"no such Makefile target: {sorted(missing)}"


def module_problems(doc, modules):
    """What is wrong with the (module, args) commands a doc names."""
    wrong = []
    for module, args in modules:
        if importlib.util.find_spec(module) is None:
            wrong.append(f"{doc}: python -m {module}: no such module")
            continue
        if not module.startswith("lrpkit"):
            continue  # pip, pytest, ruff: their options belong to their own subcommands
        command, status, text = usage_of(module, args)
        if status != 0 or "usage:" not in text:
            wrong.append(f"{doc}: python -m {command} --help exits {status}: {text[-300:]}")
            continue
        for option in sorted({a.split("=")[0] for a in args if re.match(r"--[a-z]", a)}):
            if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text):
                wrong.append(f"{doc}: python -m {command} has no {option} (see its --help)")
    return wrong


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")
def test_every_python_module_the_docs_name_exists_with_its_options():
    wrong = [p for doc, (_, modules) in named().items() for p in module_problems(doc, modules)]
    assert not wrong, "\n".join(wrong)


@pytest.mark.filterwarnings("ignore:.*found in sys.modules:RuntimeWarning")
def test_a_wrong_module_option_or_subcommand_option_is_named():
    text = (
        "`python -m lrpkit.grading subs --bonsu`, `python -m lrpkit.grading merge --root x a`\n"
        "```\nVGG16_WEIGHTS=standin .venv/bin/python -m lrpkit.nosuch --x  # python -m z\n"
        "python -m lrpkit.authoring.student bundle \\\n    --outt d && make nosuch\n```\n"
    )
    modules = [
        (m.group(1), tuple(words(m.group(2))))
        for snippet in code(text)
        for command in commands(snippet)
        if (m := PYTHON.search(command))
    ]
    assert module_problems("doc", modules) == [
        "doc: python -m lrpkit.nosuch: no such module",
        "doc: python -m lrpkit.authoring.student bundle has no --outt (see its --help)",
        "doc: python -m lrpkit.grading has no --bonsu (see its --help)",
        "doc: python -m lrpkit.grading merge has no --root (see its --help)",
    ]
    assert usage_of("lrpkit.tasks", ("setup", "--venv", "x"))[0] == "lrpkit.tasks"
    assert module_problems("doc", [("lrpkit.grading", ("subs", "--bonus", "--out=g"))]) == []


# ---------------------------------------------------------------------------
# paths, names and links
# ---------------------------------------------------------------------------

KIT_PATH = re.compile(r"^(?:lrpkit|tests|docs|notebooks|data/reference|\.ci)/[\w./-]*$")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading):
    """GitHub's anchor of a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path):
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {slug(h) for h in re.findall(r"^#+ (.*)$", text, flags=re.M)}


def resolve(name):
    """An ``lrpkit.a.b.c`` name: the longest importable module, then attributes."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


def path_problems(path, text):
    """The kit paths, ``lrpkit.`` names and links in a doc's text that lead nowhere."""
    doc = path.relative_to(ROOT).as_posix()
    wrong = []
    for snippet in code(text):
        for word in snippet.split():
            word = word.rstrip(".,;:)").split("#")[0]
            if KIT_PATH.match(word) and not (ROOT / word).exists():
                wrong.append(f"{doc}: {word} does not exist")
            name = re.fullmatch(r"(lrpkit(?:\.\w+)+)(?:\(.*)?", word)
            if name:
                try:
                    resolve(name.group(1))
                except (ImportError, AttributeError):
                    wrong.append(f"{doc}: {name.group(1)} is not the kit's")
    for link in LINK.findall(FENCE.sub("", text)):
        if re.match(r"[a-z]+:", link):
            continue  # https:, mailto:
        file, _, anchor = link.partition("#")
        target = (path.parent / file).resolve() if file else path
        if not target.exists():
            wrong.append(f"{doc}: link to {link}: no such file")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            wrong.append(f"{doc}: link to {link}: no such heading")
    return wrong


def test_every_kit_path_name_and_link_in_the_docs_exists():
    wrong = [p for path in DOCS for p in path_problems(path, path.read_text(encoding="utf-8"))]
    assert not wrong, "\n".join(wrong)


def test_a_missing_path_name_or_heading_is_named():
    text = (
        "`lrpkit/grading/sandbox/` and `lrpkit/nosuch/`, `lrpkit.reference.lrp.lrp(model)`, "
        "`lrpkit.reference.lrp.nosuch`, [a](instructors.md#4-grading), "
        "[b](instructors.md#no-such-heading), [c](nosuch.md), [d](https://example.org/x)"
    )
    assert path_problems(ROOT / "docs" / "x.md", text) == [
        "docs/x.md: lrpkit/nosuch/ does not exist",
        "docs/x.md: lrpkit.reference.lrp.nosuch is not the kit's",
        "docs/x.md: link to instructors.md#no-such-heading: no such heading",
        "docs/x.md: link to nosuch.md: no such file",
    ]


def test_the_readme_fits_on_a_screen_or_two():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines: move detail to docs/"
    for doc in ("students", "instructors", "grading-internals", "benchmarks", "development"):
        assert f"](docs/{doc}.md)" in "\n".join(lines), f"README.md does not link docs/{doc}.md"


def test_the_instructors_guide_names_every_grader_option_and_no_other():
    """docs/instructors.md: every --option it names is the grader's (or --help), and every
    option of the grader is in the guide."""
    from lrpkit.grading.cli import merge_parser, parser, report_parser

    guide = (ROOT / "docs" / "instructors.md").read_text(encoding="utf-8")
    guide = re.sub(r"^#SBATCH.*$|`sbatch [^`]*`", "", guide, flags=re.M)  # Slurm's options
    options = {
        o for p in (parser(), merge_parser(), report_parser()) for o in p._option_string_actions
    }
    used = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", guide))
    refused = {"--worker"}  # the guide's example of an abbreviation the grader refuses
    others = {  # options of the other commands in the guide (checked above)
        a.split("=")[0] for _, args in named()["docs/instructors.md"][1] for a in args
    }
    assert used <= options | refused | others, used - options - refused - others
    own = {o for o in parser()._option_string_actions if o.startswith("--")}
    assert own <= used, f"not in the guide: {own - used}"
