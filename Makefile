# make demo: set up .venv (core dependencies only) and run the main job.  make test: set up .venv
# with the dev extra (every optional extra too) and test.  make check-core: a separate venv with
# the core only runs the demo and checks that a missing extra's error names its pip command.
# Both install the exact versions in constraints.txt (what the suite last passed with);
# make test-latest installs the newest releases into .venv-latest and tests against them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-dev
CORE_STAMP := $(VENV)/.installed-core
CORE := .venv-core
LATEST := .venv-latest

.PHONY: demo check-core test test-latest constraints lint bench clean venv vignettes

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# the core install is enough for the demo; a dev install (a superset) satisfies it too
$(CORE_STAMP): pyproject.toml constraints.txt
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ] && [ $(STAMP) -nt constraints.txt ]; then \
		touch $(CORE_STAMP); else \
		$(PYTHON) -m venv $(VENV) && $(PY) -m pip install --quiet --upgrade pip && \
		$(PY) -m pip install --quiet -c constraints.txt -e . && touch $(CORE_STAMP); fi

demo: $(CORE_STAMP)
	$(PY) -m mixmio demo

# a fresh venv with the core dependencies only: the demo runs, and missing extras say so
check-core:
	rm -rf $(CORE)
	$(PYTHON) -m venv $(CORE)
	$(CORE)/bin/python -m pip install --quiet --upgrade pip
	$(CORE)/bin/python -m pip install --quiet -c constraints.txt .
	cd /tmp && $(CURDIR)/$(CORE)/bin/python -m mixmio demo > /dev/null
	cd /tmp && $(CURDIR)/$(CORE)/bin/python $(CURDIR)/tests/core_only.py

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
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) benchmarks/bench_design.py

clean:
	rm -rf $(VENV) $(LATEST) build *.egg-info
