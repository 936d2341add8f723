# Two commands on a fresh machine (Python 3.11+, Java 17+): `make demo` and `make test`.
# Each creates the virtualenv and installs what it needs on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DAYS ?= 7
CUSTOMERS ?= 1500
SEED ?= 7
export CXLAKE_HOME ?= $(CURDIR)/.cxlake

.PHONY: demo test bench lint clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## demo: simulate DAYS days, run the real cx_nightly DAG (airflow dags test) for each, print what it built
demo: $(VENV)/.installed
	$(BIN)/cxlake demo --days $(DAYS) --customers $(CUSTOMERS) --seed $(SEED)

## test: the whole suite (real Spark, Delta, GX, MLflow, Airflow)
test: $(VENV)/.installed
	$(BIN)/python -m pytest

## bench: timings and memory of the main job (figures printed with the command that made them)
bench: $(VENV)/.installed
	$(BIN)/cxlake bench --days $(DAYS) --customers $(CUSTOMERS)

lint: $(VENV)/.installed
	$(BIN)/ruff check jobs dags tests

clean:
	rm -rf $(CXLAKE_HOME)
