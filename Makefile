# make demo: set up .venv and run the main job.  make test: set up .venv (with dev extra) and test.
# Both install the exact versions in constraints.txt (what the suite last passed with);
# make test-latest installs the newest releases into .venv-latest and tests against them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
LATEST := .venv-latest

.PHONY: demo test test-latest constraints lint bench clean venv vignettes

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m mixmio demo

test: $(STAMP)
	$(PY) -m pytest -q

# run every vignette in full and write vignettes/rendered/NAME.md with its PNG figures
vignettes: $(STAMP)
	$(PY) vignettes/_render.py

# newest releases of every dependency, no constraints: a changed dependency shows up here
test-latest:
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet --upgrade -e '.[dev]'
	$(LATEST)/bin/python -m pip freeze --exclude-editable > $(LATEST)/versions.txt
	$(LATEST)/bin/python -m pytest -q -p no:cacheprovider

# after make test-latest passes: pin what it ran with
constraints:
	test -f $(LATEST)/versions.txt || { echo "run make test-latest first"; exit 1; }
	{ echo "# Exact versions the suite last passed with (make test-latest, $$(date +%F))."; \
	  echo "# Refresh: make test-latest, and when it passes: make constraints (rewrites this file)."; \
	  grep -v '^#' $(LATEST)/versions.txt | grep -v '^-e'; } > constraints.txt

lint: $(STAMP)
	$(VENV)/bin/ruff check mixmio tests benchmarks vignettes
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) benchmarks/bench_design.py

clean:
	rm -rf $(VENV) $(LATEST) build *.egg-info
