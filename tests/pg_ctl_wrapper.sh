#!/bin/sh
# pg_ctl for pytest-postgresql (tests/fixtures_postgres.py passes this script as its executable).
#
# PostgreSQL refuses to run as root. As root, the real pg_ctl (TRIAGE_TEST_PG_CTL, found by
# fixtures_postgres.py) runs as the postgres OS user, keeping one capability of root's:
# CAP_DAC_OVERRIDE, because pytest-postgresql puts the data directory and log file in pytest's
# temporary directories, which are root's and closed to other users (mode 0700).
set -eu
pg_ctl="${TRIAGE_TEST_PG_CTL:?set by tests/fixtures_postgres.py: the real pg_ctl}"
# The cluster is thrown away after the session: initdb need not sync every file to disk.
if [ "${1:-}" = initdb ]; then
  set -- "$@" -o --no-sync
fi
if [ "$(id -u)" -ne 0 ]; then
  exec "$pg_ctl" "$@"
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups \
  --inh-caps=+dac_override --ambient-caps=+dac_override -- "$pg_ctl" "$@"
