-- One-time setup of the PostgreSQL database behind the MLflow tracking server, run by a
-- database administrator:  psql -h db.internal -U postgres -f mlflow/postgres-init.sql
-- Set the role's password out of band (\password mlflow), never in this file.
CREATE ROLE mlflow LOGIN;
CREATE DATABASE mlflow OWNER mlflow;
-- The ticket store can live in the same server, in its own database and role:
CREATE ROLE triage LOGIN;
CREATE DATABASE triage OWNER triage;
