# Thin wrappers; the logic lives in Python (tools/, sandbox/, bench/).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup test lint demo sandbox sync-once bench bench-quick compose-test clean

setup: $(STAMP)  ## create .venv and install runtime + dev requirements and the package

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

lint: setup  ## ruff check + ruff format --check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: setup lint  ## the whole test suite (what CI runs)
	$(PY) -m pytest -q -p no:cacheprovider

demo: setup  ## sandboxes + Airflow standalone with the package's DAGs, UI on localhost:8080 (fresh each start)
	$(PY) tools/demo.py $(DEMO_ARGS)

sync-once: setup  ## every DAG of every demo administration twice against fresh sandboxes; prints counts
	$(PY) tools/sync_once.py

sandbox: setup  ## only the two sandboxes, demo fixture, default ports
	$(PY) -m sandbox serve

bench: setup  ## benchmarks at full size (calls, time, memory, DAG parse); writes bench/RESULTS.md; the heavy benchmark tests
	$(PY) -m pytest -q -p no:cacheprovider -m bench tests/bench
	$(PY) -m bench

bench-quick: setup  ## benchmarks at small sizes, counts asserted (also part of `make test`)
	$(PY) -m bench --quick

compose-test: setup  ## docker-compose.yaml in real containers, end to end (root; not in `make test`)
	$(PY) tools/compose_test.py

clean:  ## remove the demo Airflow home (runs, sync state, logs and the login)
	rm -rf airflow_home
