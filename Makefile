# Aiguillage — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# uv installs the project (constraints.txt); its own release is fixed here, for the same reason.
UV_VERSION ?= 0.13.9
STAMP := $(VENV)/.installed-stamp
DEMO_PORT ?= 8000
SINK_PORT ?= 8025
PREFECT_PORT ?= 4200
# The demo replays this year up to today (the previous one in full before April).
DEMO_YEAR ?= $(shell if [ $$(date +%-m) -lt 4 ]; then echo $$(( $$(date +%Y) - 1 )); else date +%Y; fi)
# Python byte-code is compiled once at install time: where PYTHONDONTWRITEBYTECODE is set (as on
# these machines) every process would otherwise recompile Prefect, SQLAlchemy and the project
# from source (measured: `import prefect` 2.5 s of CPU without .pyc files, 1.0 s with them).
PACKAGES := engine web workflows matching partners notifications reporting

export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export PREFECT_LOGGING_LEVEL ?= WARNING
# The embedded Prefect API is a subprocess; on a loaded machine it needs more than the 20 s default to start.
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 180

.PHONY: install upgrade browser demo demo-data test bench lint format clean

# The releases installed are those of constraints.txt (see its header), on any date.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip "uv==$(UV_VERSION)"
	@$(VENV)/bin/uv pip install --quiet --compile-bytecode --python $(PY) -c constraints.txt -e '.[dev]'
	@$(PY) -m compileall -q $(PACKAGES) > /dev/null
	@touch $(STAMP)

install: $(STAMP)

# The newest releases pyproject.toml allows, written back to constraints.txt (its header kept).
upgrade: install
	@$(VENV)/bin/uv pip install --quiet --upgrade --compile-bytecode --python $(PY) -e '.[dev]'
	@{ grep '^#' constraints.txt; $(VENV)/bin/uv pip freeze --python $(PY) \
		| grep -v -E '^(-e |aiguillage|pip==|uv==)'; } > constraints.txt.new
	@mv constraints.txt.new constraints.txt
	@echo "constraints.txt rewritten: run make test, then commit it"

# Migrate, seed the scale-1 network, run the flows, then serve the app with a mail sink.
demo-data: install
	@mkdir -p var/mail
	PREFECT_HOME=$(CURDIR)/var/prefect $(VENV)/bin/aiguillage db upgrade
	PREFECT_HOME=$(CURDIR)/var/prefect $(VENV)/bin/aiguillage seed --reset --scale 1 --seed 42 --entrants --today $(DEMO_YEAR)-01-01
	@if $(VENV)/bin/aiguillage --help | grep -q " services "; then PREFECT_HOME=$(CURDIR)/var/prefect $(VENV)/bin/aiguillage services generate var/data-inclusion-services.json --count 2000 --seed 42 --structures var/data-inclusion-structures.json && PREFECT_HOME=$(CURDIR)/var/prefect $(VENV)/bin/aiguillage import services var/data-inclusion-services.json --structures var/data-inclusion-structures.json; fi
	PREFECT_HOME=$(CURDIR)/var/prefect $(VENV)/bin/aiguillage simulate --year $(DEMO_YEAR)
	PREFECT_HOME=$(CURDIR)/var/prefect $(VENV)/bin/aiguillage snapshots --year $(DEMO_YEAR) --no-prefect
	@if $(VENV)/bin/aiguillage --help | grep -q " route "; then PREFECT_HOME=$(CURDIR)/var/prefect $(VENV)/bin/aiguillage route; fi
	@if $(VENV)/bin/aiguillage --help | grep -q " demo-activity "; then PREFECT_HOME=$(CURDIR)/var/prefect $(VENV)/bin/aiguillage demo-activity; fi
	@if $(VENV)/bin/aiguillage --help | grep -q " allocate "; then PREFECT_HOME=$(CURDIR)/var/prefect $(VENV)/bin/aiguillage allocate; fi
	@$(VENV)/bin/aiguillage summary

# A local Prefect server, the mail sink, the scheduled flows and the app (deploy/demo.sh).
demo: install
	PREFECT_PORT=$(PREFECT_PORT) SINK_PORT=$(SINK_PORT) DEMO_PORT=$(DEMO_PORT) VENV=$(VENV) bash deploy/demo.sh

# Debian's Chromium drives the browser tests (never a Playwright browser download).
browser:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# One test process per core (pytest-xdist), a file's tests kept together so that its module
# fixtures (a seeded network, a simulated year) are built once.
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 1)

test: install browser
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

bench: install
	@mkdir -p bench/results
	$(PY) bench/run.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf var .pytest_cache .ruff_cache .mypy_cache
