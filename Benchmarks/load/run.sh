#!/usr/bin/env bash
# Gatehouse load benchmark: direct-to-upstream vs nginx reverse proxy vs Gatehouse, in one run,
# against the same fast mock upstream (nginx returning a static chat.completion) on 127.0.0.1.
# See Benchmarks/load/README.md for what every figure means.
#
#   bash Benchmarks/load/run.sh --gatehouse PATH [--duration-fixed 30] [--duration-max 10] [--json out.json]
#   bash Benchmarks/load/run.sh --skip-gatehouse ...      (direct + nginx only)
set -uo pipefail
# The whole script is one { ... } block: bash reads it completely before running it, so editing or
# checking out another version of this file during a run cannot derail the run.
{

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-python3}"
export PYTHONDONTWRITEBYTECODE=1

GATEHOUSE_BIN="${GATEHOUSE_BIN:-}"
SKIP_GATEHOUSE="${SKIP_GATEHOUSE:-0}"
DUR_FIXED=30          # seconds measured per fixed-rate stage
DUR_MAX=10            # seconds measured per max-throughput stage
WARMUP=3              # seconds of warm-up before each stage (not measured)
RATES="200,1000"      # fixed request rates, req/s
WRK_THREADS=1         # see README: 1 thread gave steadier numbers than 2 on 2 cores
WRK_CONNS=64
MAX_REPEATS=3         # max-throughput runs per target (interleaved); the median is reported
FIXED_CONNS=16        # keep-alive connections per target the fixed-rate generator opens up front
SLICE=1               # fixed rates: seconds per target before rotating to the next
SETTLE=0.2            # fixed rates: unmeasured seconds at the start of each slice
REQ_TIMEOUT=5         # seconds; a later answer counts as an error
MAX_ERR=0.001         # a stage fails above this share of non-2xx + errors (0.1 %)
STARTUP_TIMEOUT=60    # seconds for Gatehouse to answer GET /health
JSON_OUT=""
KEEP_TMP=0
INSTALL=1
UPSTREAM_ACCESS_LOG=0
WAIT_QUIET=0          # seconds to wait, before each stage, for other work on the machine to stop
AA=1                  # repeat the direct run after the targets (noise floor)
CLIENT_KEY="${GATEHOUSE_CLIENT_KEY:-}"
CONTROLS=0            # 1: Gatehouse runs with a virtual key, rate limits and budgets active
PERF_OUT=""           # where to write the CPU profile table (cpu_profile.py) of the first max-gatehouse stage
PERF_DONE=0

usage() {
    cat <<EOF
usage: bash Benchmarks/load/run.sh (--gatehouse PATH | --skip-gatehouse) [options]

  --gatehouse PATH       Gatehouse binary (or env GATEHOUSE_BIN)
  --skip-gatehouse       run only direct + nginx (or env SKIP_GATEHOUSE=1)
  --duration-fixed S     measured seconds per fixed-rate stage      (default $DUR_FIXED)
  --duration-max S       measured seconds per max-throughput stage  (default $DUR_MAX)
  --warmup S             warm-up seconds before each stage          (default $WARMUP)
  --rates LIST           fixed rates in req/s, comma-separated      (default $RATES)
  --wrk-threads N        wrk threads for max throughput             (default $WRK_THREADS)
  --wrk-connections N    wrk connections for max throughput         (default $WRK_CONNS)
  --max-repeats N        max-throughput runs per target; median reported (default $MAX_REPEATS)
  --fixed-connections N  generator keep-alive connections per target (default $FIXED_CONNS)
  --slice S              fixed rates: seconds per target per turn    (default $SLICE)
  --max-error-rate F     allowed share of non-2xx + errors per stage (default $MAX_ERR)
  --startup-timeout S    wait for Gatehouse GET /health             (default $STARTUP_TIMEOUT)
  --client-key KEY       send 'Authorization: Bearer KEY' to every target (or env GATEHOUSE_CLIENT_KEY)
  --controls             run Gatehouse with a virtual key (rate limit + budget), a global rate limit
                         and a global budget active; the key is sent to every target
  --no-repeat            leave out the second direct target in the fixed-rate rotation (noise floor)
  --wait-quiet S         before each stage, wait up to S seconds until the machine is idle
                         (< 10% of a core busy over 1 s); for shared machines   (default $WAIT_QUIET)
  --json PATH            write every figure as JSON here
  --keep-tmp             keep the temp dir (configs, logs, raw results)
  --perf PATH            sample Gatehouse with `perf record` during its first maximum-throughput
                         stage and write where its CPU goes (cpu_profile.py's tables) to PATH
  --upstream-access-log  have the mock upstream write an access log (off: it grows by ~100 MB
                         per minute at full speed; the upstream's request counter is read anyway)
  --no-install           never apt-get install missing tools
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --gatehouse) GATEHOUSE_BIN="${2:?}"; shift 2 ;;
        --gatehouse=*) GATEHOUSE_BIN="${1#*=}"; shift ;;
        --skip-gatehouse) SKIP_GATEHOUSE=1; shift ;;
        --duration-fixed) DUR_FIXED="${2:?}"; shift 2 ;;
        --duration-max) DUR_MAX="${2:?}"; shift 2 ;;
        --warmup) WARMUP="${2:?}"; shift 2 ;;
        --rates) RATES="${2:?}"; shift 2 ;;
        --wrk-threads) WRK_THREADS="${2:?}"; shift 2 ;;
        --wrk-connections) WRK_CONNS="${2:?}"; shift 2 ;;
        --max-repeats) MAX_REPEATS="${2:?}"; shift 2 ;;
        --upstream-access-log) UPSTREAM_ACCESS_LOG=1; shift ;;
        --fixed-connections) FIXED_CONNS="${2:?}"; shift 2 ;;
        --slice) SLICE="${2:?}"; shift 2 ;;
        --max-error-rate) MAX_ERR="${2:?}"; shift 2 ;;
        --startup-timeout) STARTUP_TIMEOUT="${2:?}"; shift 2 ;;
        --client-key) CLIENT_KEY="${2:?}"; shift 2 ;;
        --no-repeat) AA=0; shift ;;
        --controls) CONTROLS=1; shift ;;
        --wait-quiet) WAIT_QUIET="${2:?}"; shift 2 ;;
        --json) JSON_OUT="${2:?}"; shift 2 ;;
        --json=*) JSON_OUT="${1#*=}"; shift ;;
        --keep-tmp) KEEP_TMP=1; shift ;;
        --perf) PERF_OUT="${2:?}"; shift 2 ;;
        --no-install) INSTALL=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

die() { echo "run.sh: $*" >&2; exit 1; }
bad() { echo "run.sh: $*" >&2; exit 2; }  # a bad argument
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

is_int() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -gt 0 ]; }
for v in DUR_FIXED DUR_MAX WRK_THREADS WRK_CONNS FIXED_CONNS STARTUP_TIMEOUT MAX_REPEATS SLICE; do
    is_int "${!v}" || bad "$v must be a positive integer (got '${!v}')"
done
[[ "$WARMUP" =~ ^[0-9]+$ ]] || bad "--warmup must be a whole number of seconds"
[[ "$WAIT_QUIET" =~ ^[0-9]+$ ]] && [ "$WAIT_QUIET" -le 600 ] || bad "--wait-quiet must be 0..600 seconds"
[ "$DUR_FIXED" -le 600 ] && [ "$DUR_MAX" -le 600 ] && [ "$WARMUP" -le 60 ] && [ "$MAX_REPEATS" -le 10 ] \
    || bad "capped to keep the run bounded: fixed/max <= 600 s, warm-up <= 60 s, max-repeats <= 10"
IFS=',' read -r -a RATE_LIST <<<"$RATES"
for r in "${RATE_LIST[@]}"; do
    is_int "$r" && [ "$r" -le 20000 ] || bad "--rates: '$r' is not an integer in 1..20000"
done
if [ "$SKIP_GATEHOUSE" != "1" ]; then
    [ -n "$GATEHOUSE_BIN" ] || bad "give --gatehouse PATH (or --skip-gatehouse)"
    [ -x "$GATEHOUSE_BIN" ] || bad "not an executable file: $GATEHOUSE_BIN"
    GATEHOUSE_BIN="$(cd "$(dirname "$GATEHOUSE_BIN")" && pwd)/$(basename "$GATEHOUSE_BIN")"
fi
if [ -n "$JSON_OUT" ]; then
    mkdir -p "$(dirname "$JSON_OUT")" || bad "cannot create the directory for $JSON_OUT"
    JSON_OUT="$(cd "$(dirname "$JSON_OUT")" && pwd)/$(basename "$JSON_OUT")"
fi

# ------------------------------------------------------------------------------------ tools
ensure_tool() {  # ensure_tool COMMAND DEBIAN_PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    [ "$INSTALL" = "1" ] || die "$1 is missing (apt-get install -y $2), and --no-install was given"
    [ "$(id -u)" = "0" ] || die "$1 is missing: run 'apt-get install -y $2' as root"
    log "$1 is missing; installing Debian package $2"
    # Read the whole answer first: `apt-cache … | grep -q` under pipefail fails when grep stops early (SIGPIPE).
    if ! grep -q 'Candidate: [0-9]' <<<"$(apt-cache policy "$2" 2>/dev/null)"; then
        timeout 300 apt-get update >/dev/null || die "apt-get update failed"
    fi
    grep -q 'Candidate: [0-9]' <<<"$(apt-cache policy "$2" 2>/dev/null)" || die "no Debian package $2"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y "$2" >/dev/null \
        || die "apt-get install -y $2 failed"
    command -v "$1" >/dev/null 2>&1 || die "$2 installed but $1 is still not on PATH"
}
ensure_tool nginx nginx
ensure_tool wrk wrk
[ -n "$PERF_OUT" ] && ensure_tool perf linux-perf
command -v timeout >/dev/null || die "coreutils 'timeout' is missing"
command -v "$PY" >/dev/null || die "python3 is missing"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 8) else 1)' || die "python3 >= 3.8 needed"

# ------------------------------------------------------------------- processes and cleanup
TMP="$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-load.XXXXXX")" || die "mktemp failed"
RES="$TMP/results"
mkdir -p "$RES"
PIDS=()            # every long-running process we started, in start order
LOADPID=""         # the load tool running now, if any
FAILED=0
LOADAVG_START="$(cut -d' ' -f1-3 /proc/loadavg)"

stop_pid() {  # stop_pid PID GRACE_SECONDS
    local pid=$1 grace=$2 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "run.sh: process $pid did not stop in ${grace}s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -n "$LOADPID" ] && stop_pid "$LOADPID" 10
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[$i]}" 10
    done
    if [ "$KEEP_TMP" = "1" ] || [ "$rc" -ne 0 ]; then
        echo "run.sh: logs, configs and raw results kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'echo "run.sh: interrupted" >&2; exit 130' INT
trap 'echo "run.sh: terminated" >&2; exit 143' TERM

# Run a bounded command in the background and wait for it, so that INT/TERM reach the trap at once.
run_bounded() {  # run_bounded SECONDS OUTFILE CMD...
    local secs=$1 out=$2
    shift 2
    timeout -k 5 "$secs" "$@" >"$out" 2>&1 &
    LOADPID=$!
    local rc=0
    wait "$LOADPID" || rc=$?
    LOADPID=""
    return "$rc"
}

fail() { echo "$*" >>"$RES/failures.txt"; log "FAIL: $*"; FAILED=1; }

# ------------------------------------------------------------------------------ the set-up
mapfile -t PORTS < <("$PY" "$HERE/bench.py" ports 3)
UP_PORT=${PORTS[0]}
PROXY_PORT=${PORTS[1]}
GH_PORT=${PORTS[2]}
BODY="$HERE/templates/request.json"
RESPONSE="$(tr -d '\n' <"$HERE/templates/mock-response.json")"
case "$RESPONSE" in
    *\'* | *\$* | *\\*) die "mock-response.json must not contain ' \$ or \\ (it goes into an nginx string)" ;;
esac
ACCESS_LOG="access_log off;  # the stub_status counter is read instead"
[ "$UPSTREAM_ACCESS_LOG" = "1" ] && ACCESS_LOG="access_log $TMP/upstream-nginx/access.log combined buffer=256k flush=2s;"
USER_LINE="# (not root: workers run as this user)"
[ "$(id -u)" = "0" ] && USER_LINE="user root;  # the temp dir is private to root"

HDR_ARGS=()
WRK_AUTH=""
if [ -n "$CLIENT_KEY" ]; then
    HDR_ARGS=(--header "Authorization: Bearer $CLIENT_KEY")
    WRK_AUTH="Bearer $CLIENT_KEY"
fi

start_nginx() {  # start_nginx NAME TEMPLATE PORT -> sets NGINX_PID
    local name=$1 template=$2 port=$3 prefix="$TMP/$1"
    mkdir -p "$prefix/tmp"
    "$PY" "$HERE/bench.py" render "$template" "$prefix/nginx.conf" \
        "@USER_LINE@=$USER_LINE" "@PREFIX@=$prefix" "@PORT@=$port" \
        "@UPSTREAM_PORT@=$UP_PORT" "@ACCESS_LOG@=$ACCESS_LOG" "@RESPONSE@=$RESPONSE" || die "cannot render $template"
    nginx -t -q -p "$prefix" -e "$prefix/error.log" -c "$prefix/nginx.conf" \
        || die "nginx -t rejected $prefix/nginx.conf"
    nginx -p "$prefix" -e "$prefix/error.log" -c "$prefix/nginx.conf" >"$prefix/stdout.log" 2>&1 &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
}

log "temp dir $TMP; ports: upstream $UP_PORT, nginx proxy $PROXY_PORT, gatehouse $GH_PORT"
start_nginx upstream-nginx "$HERE/templates/upstream.nginx.conf" "$UP_PORT"
UP_PID=$NGINX_PID
"$PY" "$HERE/bench.py" wait-http "http://127.0.0.1:$UP_PORT/nginx_status" 15 "$UP_PID" \
    || { cat "$TMP/upstream-nginx/error.log" >&2; die "the mock upstream did not start"; }
start_nginx proxy-nginx "$HERE/templates/proxy.nginx.conf" "$PROXY_PORT"
PROXY_PID=$NGINX_PID
"$PY" "$HERE/bench.py" wait-http "http://127.0.0.1:$PROXY_PORT/nginx_status" 15 "$PROXY_PID" \
    || { cat "$TMP/proxy-nginx/error.log" >&2; die "the nginx proxy did not start"; }

TARGETS=(direct nginx)
declare -A URL=(
    [direct]="http://127.0.0.1:$UP_PORT/v1/chat/completions"
    [nginx]="http://127.0.0.1:$PROXY_PORT/v1/chat/completions"
)
declare -A TPID=([direct]="" [nginx]="$PROXY_PID")
GH_PID=""
if [ "$SKIP_GATEHOUSE" != "1" ]; then
    mkdir -p "$TMP/gh-data"
    GH_TEMPLATE="$HERE/templates/gatehouse.yaml"
    [ "$CONTROLS" = 1 ] && GH_TEMPLATE="$HERE/templates/gatehouse-controls.yaml"
    "$PY" "$HERE/bench.py" render "$GH_TEMPLATE" "$TMP/gatehouse.yaml" \
        "UPSTREAM_PORT=$UP_PORT" || die "cannot render $(basename "$GH_TEMPLATE")"
    GH_VERSION="$(timeout 10 "$GATEHOUSE_BIN" --version 2>/dev/null | head -1 || true)"
    "$PY" - "$GATEHOUSE_BIN" "$GH_VERSION" >"$RES/gatehouse-info.json" <<'EOF'
import hashlib, json, os, sys
p = sys.argv[1]
h = hashlib.sha256()
with open(p, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(json.dumps({"path": p, "version": sys.argv[2] or None, "size_bytes": os.path.getsize(p),
                  "sha256": h.hexdigest()}))
EOF
    log "starting Gatehouse: $GATEHOUSE_BIN serve --port $GH_PORT"
    GATEHOUSE_ADMIN_TOKEN="bench-admin-token-0123456789" \
    "$GATEHOUSE_BIN" serve --host 127.0.0.1 --port "$GH_PORT" --data-dir "$TMP/gh-data" \
        --config "$TMP/gatehouse.yaml" --log-level warning >"$TMP/gatehouse.log" 2>&1 &
    GH_PID=$!
    PIDS+=("$GH_PID")
    if "$PY" "$HERE/bench.py" wait-http "http://127.0.0.1:$GH_PORT/health" "$STARTUP_TIMEOUT" "$GH_PID"; then
        TARGETS+=(gatehouse)
        URL[gatehouse]="http://127.0.0.1:$GH_PORT/v1/chat/completions"
        TPID[gatehouse]="$GH_PID"
        if [ "$CONTROLS" = 1 ]; then
            CLIENT_KEY="$("$PY" "$HERE/bench.py" create-key "http://127.0.0.1:$GH_PORT" "bench-admin-token-0123456789")" \
                || die "cannot create the benchmark's virtual key"
            HDR_ARGS=(--header "Authorization: Bearer $CLIENT_KEY")
            WRK_AUTH="Bearer $CLIENT_KEY"
            log "controls on: virtual key ${CLIENT_KEY:0:7}... with 100M rpm and a 1M USD daily budget; global limit and budget"
        fi
    else
        fail "gatehouse: did not come up (no 200 from GET /health within ${STARTUP_TIMEOUT}s, or it exited; log: $TMP/gatehouse.log)"
        tail -n 30 "$TMP/gatehouse.log" >&2
    fi
fi

# Every target must answer the request with a real chat.completion before it is loaded.
LOADED=()
for t in "${TARGETS[@]}"; do
    if "$PY" "$HERE/bench.py" smoke "${URL[$t]}" "$BODY" ${CLIENT_KEY:+"Authorization: Bearer $CLIENT_KEY"}; then
        LOADED+=("$t")
    else
        fail "$t: the smoke request did not return a chat.completion with usage"
        [ "$t" = gatehouse ] && tail -n 30 "$TMP/gatehouse.log" >&2
    fi
done

mem_snapshot() {  # mem_snapshot WHEN
    "$PY" "$HERE/bench.py" mem "$UP_PID" >"$RES/mem-upstream-nginx-$1.json"
    "$PY" "$HERE/bench.py" mem "$PROXY_PID" >"$RES/mem-proxy-nginx-$1.json"
    if [ -n "$GH_PID" ] && kill -0 "$GH_PID" 2>/dev/null; then
        "$PY" "$HERE/bench.py" mem "$GH_PID" >"$RES/mem-gatehouse-$1.json"
    fi
}
mem_snapshot start

upcount() { "$PY" "$HERE/bench.py" upstream-count "http://127.0.0.1:$UP_PORT/nginx_status" 2>/dev/null || echo "-"; }

# CPU accounting around each stage, to tell the target's cost from everybody else's (all from
# per-process times, which are exact; /proc/stat's totals are tick-sampled and alias with a
# fixed request rate, so they serve only as a record):
#   tool_ticks     the load tool: this shell's reaped-children time (/proc/$$/stat cutime+cstime)
#   foreign_ticks  every user-space process outside this script's tree (a build, tests...)
busy_ticks() { awk '/^cpu /{print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
tool_ticks() { awk '{print $16 + $17}' "/proc/$$/stat"; }
CLK_TCK="$(getconf CLK_TCK 2>/dev/null || echo 100)"
foreign_ticks() { "$PY" "$HERE/bench.py" foreign-ticks "$$"; }  # everything outside this script's tree
wait_quiet() {  # until other processes use < 10% of a core over a second (our servers idle)
    [ "$WAIT_QUIET" -gt 0 ] || return 0
    local start=$SECONDS b0 b1
    while :; do
        b0=$(foreign_ticks); sleep 1; b1=$(foreign_ticks)
        if [ $((b1 - b0)) -le $((CLK_TCK / 10)) ]; then
            [ $((SECONDS - start)) -gt 1 ] && log "waited $((SECONDS - start))s for the machine to be idle"
            return 0
        fi
        if [ $((SECONDS - start)) -ge "$WAIT_QUIET" ]; then
            log "other processes still use $((100 * (b1 - b0) / CLK_TCK))% of a core after ${WAIT_QUIET}s; going on"
            return 0
        fi
    done
}
# snap NAME... -> "name:ticks,..." for the upstream and the named targets that have processes
proc_ticks() {
    local args=("upstream=$UP_PID") t
    for t in "$@"; do [ -n "${TPID[$t]:-}" ] && args+=("$t=${TPID[$t]}"); done
    "$PY" "$HERE/bench.py" ticks "${args[@]}"
}
snap_before() {  # snap_before TARGET... -> S0 (helpers first, then the tight counters)
    S0="$(proc_ticks "$@") $(upcount) $(foreign_ticks)"
    S0="$S0 $(busy_ticks) $(tool_ticks) $(date +%s%3N)"
}
snap_after() {   # snap_after TARGET... -> S1 (the tight counters first)
    S1="$(busy_ticks) $(tool_ticks) $(date +%s%3N)"
    S1="$(proc_ticks "$@") $(upcount) $(foreign_ticks) $S1"
}
# record_stage ID KIND TARGETS RATE RC   (uses S0 and S1; the report does the arithmetic)
record_stage() {
    local a b
    read -r -a a <<<"$S0"
    read -r -a b <<<"$S1"
    # id kind targets rate rc ticks-before ticks-after upstream-count-before/after busy tool wall_ms foreign
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" \
        "${a[0]}" "${b[0]}" "${a[1]}" "${b[1]}" $((b[3] - a[3])) $((b[4] - a[4])) $((b[5] - a[5])) \
        $((b[2] - a[2])) >>"$RES/stages.tsv"
}

stage_fixed() {  # stage_fixed RATE: every loaded target (+ direct again) in one rotating run
    local rate=$1 id="fixed-$1" rc=0 t names=() args=()
    for t in "${LOADED[@]}"; do names+=("$t"); args+=(--target "$t=${URL[$t]}"); done
    if [ "$AA" = "1" ] && in_loaded direct; then
        names+=(direct-repeat); args+=(--target "direct-repeat=${URL[direct]}")
    fi
    local n=${#names[@]}
    # bound: warm-up + whole slices for every target, plus slack
    local secs=$((n * (WARMUP + DUR_FIXED * 2 + SLICE) + REQ_TIMEOUT + 60))
    wait_quiet
    log "stage $id: ${rate} req/s, ${DUR_FIXED}s measured per target, rotating ${SLICE}s slices: ${names[*]}"
    snap_before "${names[@]}"
    run_bounded "$secs" "$RES/$id.log" \
        "$PY" "$HERE/loadgen.py" "${args[@]}" --rate "$rate" --duration "$DUR_FIXED" \
        --warmup "$WARMUP" --slice "$SLICE" --settle "$SETTLE" --body-file "$BODY" \
        --connections "$FIXED_CONNS" --timeout "$REQ_TIMEOUT" --json "$RES/$id.json" \
        "${HDR_ARGS[@]}" || rc=$?
    snap_after "${names[@]}"
    record_stage "$id" fixed "$(IFS=,; echo "${names[*]}")" "$rate" "$rc"
    grep '^loadgen:' "$RES/$id.log" | sed 's/^/    /' >&2
}

stage_wrk() {  # stage_wrk ID KIND TARGET THREADS CONNS SECONDS
    local id=$1 kind=$2 t=$3 thr=$4 conns=$5 secs=$6
    local rc=0
    wait_quiet
    if [ "$WARMUP" -gt 0 ]; then
        run_bounded $((WARMUP + 30)) "$RES/$id.warmup.log" env WRK_BODY_FILE="$BODY" \
            WRK_AUTHORIZATION="$WRK_AUTH" wrk -t"$thr" -c"$conns" -d"${WARMUP}s" --timeout "${REQ_TIMEOUT}s" \
            -s "$HERE/post.lua" "${URL[$t]}" || true
    fi
    log "stage $id: wrk -t$thr -c$conns -d${secs}s -> ${URL[$t]}"
    local perf_pid=""
    if [ -n "$PERF_OUT" ] && [ "$t" = gatehouse ] && [ "$kind" = max ] && [ "$PERF_DONE" = 0 ]; then
        # Self time per symbol is all the table needs: no call graphs, so sampling costs little.
        timeout -k 5 $((secs + 30)) perf record -e cpu-clock -F 999 -o "$TMP/perf.data" -p "$GH_PID" -- sleep "$secs" \
            >"$RES/perf-record.log" 2>&1 &
        perf_pid=$!
        PIDS+=("$perf_pid")
    fi
    snap_before "$t"
    run_bounded $((secs + 30)) "$RES/$id.log" env WRK_BODY_FILE="$BODY" WRK_AUTHORIZATION="$WRK_AUTH" \
        wrk -t"$thr" -c"$conns" -d"${secs}s" --timeout "${REQ_TIMEOUT}s" --latency \
        -s "$HERE/post.lua" "${URL[$t]}" || rc=$?
    snap_after "$t"
    if [ -n "$perf_pid" ]; then
        wait "$perf_pid" || true
        PERF_DONE=1
        if "$PY" "$HERE/cpu_profile.py" "$TMP/perf.data" >"$PERF_OUT" 2>"$RES/cpu-profile.log"; then
            cp "$TMP/perf.data" "$PERF_OUT.perf.data" 2>/dev/null || true
            log "CPU profile of $id written to $PERF_OUT (the recording: $PERF_OUT.perf.data)"
        else
            fail "perf: no profile ($(tail -n 3 "$RES/perf-record.log" "$RES/cpu-profile.log" | tr '\n' ' '))"
        fi
    fi
    "$PY" "$HERE/bench.py" parse-wrk "$RES/$id.log" "$RES/$id.json" || { [ "$rc" = 0 ] && rc=1; }
    record_stage "$id" "$kind" "$t" "-" "$rc"
    grep -E 'Requests/sec|Non-2xx|Socket errors' "$RES/$id.log" | sed 's/^/    /' >&2 || true
}

in_loaded() { local x; for x in "${LOADED[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }

# ------------------------------------------------------------------------------ the stages
# Calibration: a C client, one connection, closed loop, direct: the floor of the round trip.
if in_loaded direct; then
    stage_wrk calib-wrk-c1-direct calib direct 1 1 3
fi
# Fixed rates: one run per rate in which the generator rotates between all targets (and direct a
# second time, to show the noise floor) in short slices, so that drifts hit them all alike.
if [ "${#LOADED[@]}" -gt 0 ]; then
    for rate in "${RATE_LIST[@]}"; do
        stage_fixed "$rate"
    done
fi
# Maximum throughput, closed loop, repeated and interleaved (the median is reported).
for ((i = 1; i <= MAX_REPEATS; i++)); do
    for t in "${LOADED[@]}"; do
        stage_wrk "max-$t-$i" max "$t" "$WRK_THREADS" "$WRK_CONNS" "$DUR_MAX"
    done
done

mem_snapshot end
if in_loaded gatehouse && ! "$PY" -c 'import sys; sys.path.insert(0, sys.argv[1]); import bench; sys.exit(0 if bench._alive(sys.argv[2]) else 1)' "$HERE" "$GH_PID"; then
    fail "gatehouse: the process exited during the run"
    tail -n 30 "$TMP/gatehouse.log" >&2
fi

# ------------------------------------------------------------------------------ the report
TIMER_KIND="$("$PY" -c 'import json,sys,glob
for p in sorted(glob.glob(sys.argv[1] + "/fixed-*.json")):
    print(json.load(open(p)).get("timer")); break' "$RES" 2>/dev/null)"
"$PY" "$HERE/bench.py" env "$RES/env.json" \
    "duration_fixed=$DUR_FIXED" "duration_max=$DUR_MAX" "warmup=$WARMUP" "rates=$RATES" \
    "wrk_threads=$WRK_THREADS" "wrk_connections=$WRK_CONNS" "fixed_connections=$FIXED_CONNS" \
    "max_repeats=$MAX_REPEATS" "max_error_rate=$MAX_ERR" "wait_quiet_s=$WAIT_QUIET" \
    "slice_s=$SLICE" "settle_s=$SETTLE" \
    "request_timeout_s=$REQ_TIMEOUT" "loadgen_version=$("$PY" "$HERE/loadgen.py" --version 2>/dev/null || echo 1.0)" \
    "loadgen_timer=${TIMER_KIND:-?}" "gatehouse_skipped=$SKIP_GATEHOUSE" \
    "upstream_port=$UP_PORT" "proxy_port=$PROXY_PORT" "gatehouse_port=$GH_PORT" \
    "loadavg_start=$LOADAVG_START" "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" \
    "worker_processes_each_nginx=1" || fail "could not write env.json"

REPORT_RC=0
"$PY" "$HERE/bench.py" report "$RES" "$JSON_OUT" "$MAX_ERR" || REPORT_RC=$?
[ -n "$JSON_OUT" ] && log "JSON written to $JSON_OUT"
if [ "$REPORT_RC" -ne 0 ] || [ "$FAILED" -ne 0 ]; then
    exit 1
fi
exit 0
}
