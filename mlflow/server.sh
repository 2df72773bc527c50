#!/usr/bin/env bash
# Start an MLflow tracking server on the workspace's local store.
#   TRIAGE_HOME   workspace (default ./.triage)
#   MLFLOW_HOST / MLFLOW_PORT   bind address (default 127.0.0.1:5000)
# Point triage-ml at it with TRIAGE_MLFLOW_TRACKING_URI=http://$MLFLOW_HOST:$MLFLOW_PORT
set -euo pipefail
home="${TRIAGE_HOME:-.triage}"
mkdir -p "$home/mlartifacts"
exec "${MLFLOW_BIN:-mlflow}" server \
  --backend-store-uri "sqlite:///$(cd "$home" && pwd)/mlflow.db" \
  --artifacts-destination "$(cd "$home" && pwd)/mlartifacts" \
  --host "${MLFLOW_HOST:-127.0.0.1}" --port "${MLFLOW_PORT:-5000}"
