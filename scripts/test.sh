#!/usr/bin/env bash
# The whole test suite, on a fresh machine or a used one: installs what the tests need
# (PostgreSQL 15, promtool, a Python venv with the real openai/anthropic/sentry-sdk clients),
# starts a private PostgreSQL on 127.0.0.1, builds, runs `swift test`, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
state="$repo/.ci/state"
mkdir -p "$state"

log() { printf '==> %s\n' "$*" >&2; }

# --- system packages -------------------------------------------------------------------------
need=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql-15)
command -v promtool >/dev/null || need+=(prometheus)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# The build links zlib and the brotli decoder (request bodies); both ship on these machines.
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
[ -f /usr/include/brotli/decode.h ] || need+=(libbrotli-dev)
# The console's browser tests drive Debian's Chromium through Playwright (its own browser
# download is not reachable here); DejaVu gives the screenshots a readable font.
command -v chromium >/dev/null || need+=(chromium)
[ -d /usr/share/fonts/truetype/dejavu ] || need+=(fonts-dejavu-core)
# deploy/systemd/gatehouse.service is checked by systemd-analyze.
[ -x /usr/bin/systemd-analyze ] || need+=(systemd)
# deploy/compose/nginx.conf is checked and run in front of two instances (nginx -t, then for real).
[ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Packages must not start their own services here: the suite starts what it uses.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

# --- PostgreSQL 15, private cluster on 127.0.0.1 ----------------------------------------------
pgbin=/usr/lib/postgresql/15/bin
pgport=${GATEHOUSE_TEST_PG_PORT:-54329}
pgdata="$state/pg"
started_pg=0
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ ! -s "$pgdata/PG_VERSION" ]; then
  log "creating a PostgreSQL cluster in $pgdata"
  rm -rf "$pgdata" && mkdir -p "$pgdata"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$pgdata"
  as_postgres "$pgbin/initdb" -D "$pgdata" -U postgres --auth=trust -E UTF8 >/dev/null
fi
if ! as_postgres "$pgbin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
  log "starting PostgreSQL on 127.0.0.1:$pgport"
  as_postgres "$pgbin/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $pgport -k $pgdata -c max_connections=300 -c fsync=off" start >/dev/null
  started_pg=1
fi
stop_pg() { if [ "$started_pg" = 1 ]; then log "stopping PostgreSQL"; as_postgres "$pgbin/pg_ctl" -D "$pgdata" -m fast stop >/dev/null || true; fi; }
trap stop_pg EXIT

# --- Python clients ---------------------------------------------------------------------------
venv="$repo/.venv"
stamp="$venv/.requirements.sha"
want=$(sha256sum Tests/Support/requirements.txt | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "preparing the Python venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r Tests/Support/requirements.txt
  echo "$want" > "$stamp"
fi

# --- build and test ---------------------------------------------------------------------------
export GATEHOUSE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$pgport/postgres"
export GATEHOUSE_TEST_PYTHON="$venv/bin/python"
export GATEHOUSE_TEST_PROMTOOL="$(command -v promtool)"
export GATEHOUSE_BIN="$repo/.build/debug/gatehouse"
export GATEHOUSE_TEST_CHROMIUM="$(command -v chromium)"
log "building"
swift build --build-tests
log "testing"
# Every end-to-end test starts servers, mock providers and SDK clients; on a 2-core machine
# running all of them at once starves each past its own deadlines. A few at a time is faster
# overall and leaves each test the CPU its timeouts assume.
swift test --skip-build --experimental-maximum-parallelization-width "${GATEHOUSE_TEST_PARALLELISM:-4}" "$@"
