# One task runner: the README and CI use these targets.
# `make demo` and `make test` set everything up themselves on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED_CASTLE ?= ../shared/data/castle.jpg

.PHONY: setup castle browser sandbox demo test lint lab references exercises regenerate bundle grade \
	bench clean

# .venv with the requirements and the kit (editable); reinstalls when requirements*.txt,
# requirements-lock.txt or pyproject.toml change. With the lock's Python (CI's) the lock's
# exact versions, else the version ranges (lrpkit/tasks.py; also the path without make).
setup:
	$(PYTHON) -m lrpkit.tasks setup --venv $(VENV)

# castle.jpg: the shared copy when there is one (CI, tests), else fetched on first use.
castle:
	@if [ ! -f data/castle.jpg ] && [ -f $(SHARED_CASTLE) ]; then \
		mkdir -p data && cp $(SHARED_CASTLE) data/castle.jpg && chmod u+w data/castle.jpg; fi

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian's headless Chromium + driver for tests/test_explorer_browser.py (nothing downloads a browser).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends chromium chromium-driver)

# Debian's bubblewrap and libseccomp: the sandbox every submission runs in, under a seccomp
# filter (lrpkit/grading/sandbox/).
sandbox:
	@command -v bwrap >/dev/null && /sbin/ldconfig -p | grep -q 'libseccomp\.so\.2' || \
		($(SUDO) apt-get update -q && \
		$(SUDO) apt-get install -y -q --no-install-recommends bubblewrap libseccomp2)

demo: setup castle
	$(PY) -m lrpkit.demo --out figures/castle.png

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -c 'import sys, vermin; sys.exit(vermin.main())' -q --violations --eval-annotations -t=3.10- utils.py lrpkit tests

test: setup castle browser sandbox lint
	$(PY) -m pytest -ra

lab: setup castle
	$(VENV)/bin/jupyter lab notebooks/

references: castle
	$(PYTHON) -m lrpkit.tasks setup --venv $(VENV) --lock
	VGG16_WEIGHTS=standin $(PY) -m lrpkit.reference.references

exercises: setup
	$(PY) -m lrpkit.authoring.student exercises

# Everything made from lrpkit/sheet.py and the solution notebooks, in order: data/reference/,
# the solutions' stored verdicts, notebooks/exercises/ (after changing the sheet:
# docs/development.md; tests/test_sheet.py names what is stale).
regenerate: references
	$(PY) -m lrpkit.authoring.solutions
	$(PY) -m lrpkit.authoring.student exercises

bundle: setup castle
	$(PY) -m lrpkit.authoring.student bundle --out dist/student-bundle

SUBMISSIONS ?= submissions
WORKERS ?= 2
grade: setup castle sandbox
	$(PY) -m lrpkit.grading $(SUBMISSIONS) --workers $(WORKERS) --out grades

# Every benchmark runs (lrpkit/bench/__main__.py); the target fails when one of them missed a
# target (exit status 1).
bench: setup castle
	$(PY) -m lrpkit.bench

clean:
	rm -rf $(VENV) figures artifacts build dist *.egg-info
