# HireSync: `make demo` shows it working, `make test` proves it. Both set themselves up.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export PYTHONPATH := $(CURDIR)
export AIRFLOW_HOME := $(CURDIR)/var/airflow
export AIRFLOW_CONFIG := $(CURDIR)/airflow.cfg
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
# Development metadata DB; production sets PostgreSQL or MySQL here (README, "Run it in Airflow").
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN ?= sqlite:///$(CURDIR)/var/airflow/airflow.db
export AIRFLOW__OPENLINEAGE__TRANSPORT ?= {"type": "file", "log_file_path": "$(CURDIR)/var/lineage/openlineage.ndjson", "append": true}
export GX_ANALYTICS_ENABLED := False

.PHONY: setup demo test bench airflow airflow-celery clean

# The virtualenv is rebuilt only when the lock file or the package metadata changes.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

setup: $(STAMP)
	mkdir -p var/lineage var/airflow
	$(BIN)/hiresync init

# Start the AIView simulator, run the sync DAG twice through Airflow, print what happened.
demo: setup
	$(BIN)/airflow db migrate > var/airflow/db-migrate.log 2>&1 || (tail -20 var/airflow/db-migrate.log; exit 1)
	$(BIN)/python -m hiresync.demo

# HIRESYNC_TEST_PG_URL / HIRESYNC_TEST_MYSQL_URL add PostgreSQL and MariaDB runs of the database tests.
test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: setup
	$(BIN)/python bench/end_to_end.py $(BENCH_ARGS)
	$(BIN)/python bench/validation_mapping.py $(VALIDATION_BENCH_ARGS)
	$(BIN)/python bench/pii.py $(PII_BENCH_ARGS)
	$(BIN)/python bench/relay.py $(RELAY_BENCH_ARGS)
	$(BIN)/python bench/dag_tasks.py $(DAG_BENCH_ARGS)

# Airflow UI at http://localhost:8080 with the simulators behind their connections (LocalExecutor).
airflow: setup
	$(BIN)/python -m hiresync.dev_airflow local

# The same on a distributed deployment: PostgreSQL metadata + hub, Redis broker, two Celery workers
# (README, "Deploy on real hosts"). Needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379.
airflow-celery: setup
	AIRFLOW_HOME=$(CURDIR)/var/airflow-celery HIRESYNC_VAR=$${HIRESYNC_VAR:-$(CURDIR)/var} \
	  $(BIN)/python -m hiresync.dev_airflow celery

clean:
	rm -rf var
