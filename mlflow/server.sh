#!/usr/bin/env bash
# Start the MLflow tracking server (tracking + model registry + artifact proxy) for triage-ml.
#
# Configuration, all from the environment (see mlflow/server.env.example):
#   MLFLOW_BACKEND_STORE_URI      where runs and the registry live. Default: the workspace's
#                                 SQLite file, sqlite:///$TRIAGE_HOME/mlflow.db. Production:
#                                 postgresql+psycopg://mlflow@db.internal:5432/mlflow (password
#                                 from PGPASSWORD or ~/.pgpass, never in this file).
#   MLFLOW_ARTIFACTS_DESTINATION  where the server stores artifacts. Default: the directory
#                                 $TRIAGE_HOME/mlartifacts. Production: a shared directory, or
#                                 s3://bucket/prefix (S3 or S3-compatible: set MLFLOW_S3_ENDPOINT_URL
#                                 and AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY; needs boto3).
#   MLFLOW_HOST / MLFLOW_PORT     bind address (default 127.0.0.1:5000).
#   MLFLOW_WORKERS                uvicorn workers (default 2).
#   MLFLOW_BIN                    the mlflow executable (default: mlflow on PATH).
#
# Clients never see the artifact store: the server proxies it (--serve-artifacts), so
# triage-ml only needs TRIAGE_MLFLOW_TRACKING_URI=http://$MLFLOW_HOST:$MLFLOW_PORT.
set -euo pipefail

mlflow_bin="${MLFLOW_BIN:-mlflow}"
home="${TRIAGE_HOME:-.triage}"
mkdir -p "$home"
home="$(cd "$home" && pwd)"
backend="${MLFLOW_BACKEND_STORE_URI:-sqlite:///$home/mlflow.db}"
artifacts="${MLFLOW_ARTIFACTS_DESTINATION:-$home/mlartifacts}"

case "$artifacts" in
  s3://*)
    python_bin="$(dirname "$(command -v "$mlflow_bin")")/python"
    if ! "$python_bin" -c "import boto3" 2>/dev/null; then
      echo "error: an s3:// artifact destination needs boto3 in the server's environment (pip install boto3)" >&2
      exit 2
    fi ;;
  *://*) ;;
  *) mkdir -p "$artifacts" ;;
esac

# A PostgreSQL (or MySQL) backend created by an older MLflow must be migrated before the
# server starts; `mlflow db upgrade` is a no-op when the schema is current. SQLite files
# are created and migrated by the server itself.
case "$backend" in
  sqlite:*) ;;
  *) "$mlflow_bin" db upgrade "$backend" ;;
esac

echo "mlflow server: backend $(printf '%s' "$backend" | sed -E 's#://([^:/@]+):[^@]*@#://\1:***@#'), artifacts $artifacts" >&2
exec "$mlflow_bin" server \
  --backend-store-uri "$backend" \
  --artifacts-destination "$artifacts" \
  --serve-artifacts \
  --host "${MLFLOW_HOST:-127.0.0.1}" --port "${MLFLOW_PORT:-5000}" \
  --workers "${MLFLOW_WORKERS:-2}"
