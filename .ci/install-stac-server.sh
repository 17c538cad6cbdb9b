#!/usr/bin/env bash
# Install what tests/stac_publish needs for its real STAC API server on 127.0.0.1:
#   - PostgreSQL + PostGIS (Debian packages; needs root, as CI is),
#   - stac-fastapi-pgstac + pypgstac in a separate venv (.venv-stacapi): their pins (uvicorn,
#     cachetools, fastapi) conflict with the main .venv's Prefect/MLflow stack.
# Idempotent: a second run only checks (about a second). First run: about 45 s, ~300 MB.
# Override the venv location with COALIGN_STACAPI_VENV, the interpreter with PY.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-python3.11}
VENV=${COALIGN_STACAPI_VENV:-.venv-stacapi}
REQUIREMENTS="stac-fastapi-pgstac[server]==7.2.0 pypgstac[psycopg]==0.10.0"
LOG=$(mktemp -t coalign-install-stac-server.XXXXXX)
trap 'rm -f "$LOG"' EXIT

fail() { echo "install-stac-server: $*" >&2; tail -n 40 "$LOG" >&2 || true; exit 1; }

pg_major() {  # major version of the installed PostgreSQL server, or empty
  ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sed -E 's#/usr/lib/postgresql/([0-9]+)/.*#\1#' | sort -n | tail -n 1
}

have_postgis() {
  local v; v=$(pg_major)
  [ -n "$v" ] && [ -f "/usr/share/postgresql/$v/extension/postgis.control" ]
}

if ! have_postgis; then
  [ "$(id -u)" -eq 0 ] || fail "PostgreSQL/PostGIS missing and not root: run as root, or: apt-get install postgresql postgresql-NN-postgis-3"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >>"$LOG" 2>&1 || fail "apt-get update failed"
  if [ -z "$(pg_major)" ]; then
    apt-get install -y -qq --no-install-recommends postgresql >>"$LOG" 2>&1 || fail "installing postgresql failed"
  fi
  v=$(pg_major)
  [ -n "$v" ] || fail "no PostgreSQL server under /usr/lib/postgresql after installing postgresql"
  apt-get install -y -qq --no-install-recommends "postgresql-$v-postgis-3" >>"$LOG" 2>&1 \
    || fail "installing postgresql-$v-postgis-3 failed"
  have_postgis || fail "PostGIS still missing for PostgreSQL $v"
fi
# (the Debian package may create a "main" cluster on port 5432; the tests start their own and leave it alone)

stamp="$VENV/.coalign-stacapi-requirements"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$REQUIREMENTS" ] || [ ! -x "$VENV/bin/uvicorn" ]; then
  command -v "$PY" >/dev/null 2>&1 || fail "$PY not found (Python 3.11 is needed for $VENV)"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV" >>"$LOG" 2>&1 || fail "creating $VENV failed"
  # shellcheck disable=SC2086  # REQUIREMENTS is a list of requirement specifiers
  "$VENV/bin/pip" install -q --disable-pip-version-check $REQUIREMENTS >>"$LOG" 2>&1 \
    || fail "pip install $REQUIREMENTS into $VENV failed"
  "$VENV/bin/python" -c "import stac_fastapi.pgstac.app, pypgstac" >>"$LOG" 2>&1 || fail "$VENV cannot import stac_fastapi.pgstac"
  echo "$REQUIREMENTS" >"$stamp"
fi
echo "install-stac-server: PostgreSQL $(pg_major) + PostGIS, and $VENV ($REQUIREMENTS) ready"
