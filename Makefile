# Two commands on a fresh machine (Python 3.11+, Java 17+): `make demo` and `make test`.
# Each creates the virtualenv and installs what it needs on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Three DAG nights (the first trains both models, the last is a Sunday: weekly OPTIMIZE + VACUUM).
DAYS ?= 3
# History imported at once before the DAG nights: the models need matured orders and churn labels.
HISTORY_DAYS ?= 123
CUSTOMERS ?= 1500
SEED ?= 7
export CXLAKE_HOME ?= $(CURDIR)/.cxlake

.PHONY: demo test bench lint clean jvm-archive

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## jvm-archive: once per machine, the JDK class archive every later Spark start maps (AppCDS):
## a task process's Spark start + first Delta write ~17 -> ~11 s. Without it Spark starts as before.
jvm-archive: $(VENV)/.installed
	-$(BIN)/cxlake jvm-archive --if-missing

## demo: simulate HISTORY_DAYS + DAYS days, import the history at once, run the real cx_nightly DAG
## (airflow dags test) for the last DAYS nights, print what it built. The demo's churn horizon is
## 21 days (product default 60) so that 120 days of history hold enough labelled weeks.
demo: $(VENV)/.installed jvm-archive
	CXLAKE_CHURN_HORIZON_DAYS=$${CXLAKE_CHURN_HORIZON_DAYS:-21} $(BIN)/cxlake demo --days $(DAYS) \
		--history-days $(HISTORY_DAYS) --customers $(CUSTOMERS) --seed $(SEED)

## test: the whole suite (real Spark, Delta, GX, MLflow, Airflow); two workers, one test file each
## at a time (module fixtures stay in one process): small Spark jobs wait on latency, not on CPU.
## Files are handed out in collection order (tests/conftest.py puts the whole-night modules first),
## not xdist's default of most tests first
test: $(VENV)/.installed jvm-archive
	@command -v chromium >/dev/null || echo "make test: the report test needs Debian's chromium: sudo apt-get update && sudo apt-get install -y chromium"
	$(BIN)/python -m pytest -n 2 --dist loadfile --no-loadscope-reorder

## bench: simulate a world of SIZE (demo, quick ~1 M interaction events, large ~10 M), then per-stage figures of
## night 1 on an empty lake, the history import and the last night: $(CXLAKE_HOME)/bench/$(SIZE).json
SIZE ?= quick
bench: $(VENV)/.installed jvm-archive
	$(BIN)/cxlake bench --size $(SIZE)

lint: $(VENV)/.installed
	$(BIN)/ruff check jobs dags tests

clean:
	rm -rf $(CXLAKE_HOME)
