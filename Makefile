# One task runner: the README and CI use these targets.
# `make demo` and `make test` set everything up themselves on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED_CASTLE ?= ../shared/data/castle.jpg

.PHONY: setup castle browser demo test lint lab references exercises bundle grade bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps -e .
	touch $@

# castle.jpg: the shared copy when there is one (CI, tests), else fetched on first use.
castle:
	@if [ ! -f data/castle.jpg ] && [ -f $(SHARED_CASTLE) ]; then \
		mkdir -p data && cp $(SHARED_CASTLE) data/castle.jpg && chmod u+w data/castle.jpg; fi

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian's headless Chromium + driver for tests/test_explorer_browser.py (nothing downloads a browser).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends chromium chromium-driver)

demo: setup castle
	$(PY) -m lrpkit.demo --out figures/castle.png

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: setup castle browser lint
	$(PY) -m pytest -ra

lab: setup castle
	$(VENV)/bin/jupyter lab notebooks/

references: setup castle
	VGG16_WEIGHTS=standin $(PY) -m lrpkit.references

exercises: setup
	$(PY) -m lrpkit.student exercises

bundle: setup castle
	$(PY) -m lrpkit.student bundle --out dist/student-bundle

SUBMISSIONS ?= submissions
WORKERS ?= 2
grade: setup castle
	$(PY) -m lrpkit.grade $(SUBMISSIONS) --workers $(WORKERS) --out grades

bench: setup castle
	$(PY) -m lrpkit.bench
	$(PY) -m lrpkit.explorer_bench
	$(PY) -m lrpkit.grade_bench

clean:
	rm -rf $(VENV) figures artifacts build dist *.egg-info
