#!/usr/bin/env bash
# Proves the release tarball runs on a machine without Swift: unpacks it into a minimal Debian 12
# root (debootstrap --variant=minbase, nothing added), runs `gatehouse serve` there under chroot,
# sends a real OpenAI SDK call through it to a mock provider on the host, and checks the call was
# metered. Prints the time of each phase; exits non-zero on any failure; stops what it started.
#
#   scripts/test-package.sh                    # builds with scripts/package.sh first
#   scripts/test-package.sh dist/gatehouse-0.1.0-linux-x86_64.tar.gz   # or GATEHOUSE_PACKAGE_TARBALL
#
# Needs root (debootstrap, chroot, mount). The Debian root is cached in .ci/state (about 180 MB),
# so only the first run downloads it; the Python venv with `openai` comes from scripts/test.sh
# (.venv, or GATEHOUSE_TEST_PYTHON). GATEHOUSE_PACKAGE_ROOT puts the root elsewhere: a directory
# that does not exist, is empty, or holds a root this script made (it deletes and mounts there).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
state="$repo/.ci/state"
root=${GATEHOUSE_PACKAGE_ROOT:-$state/debian-bookworm-minbase}
mirror=${GATEHOUSE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
python=${GATEHOUSE_TEST_PYTHON:-$repo/.venv/bin/python}
tarball=${1:-${GATEHOUSE_PACKAGE_TARBALL:-}}

log() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'test-package.sh: FAILED: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot and mounting /proc)"
"$python" -c 'import openai' 2>/dev/null || fail "$python cannot import openai (run scripts/test.sh once, or set GATEHOUSE_TEST_PYTHON)"

# --- timings and cleanup ------------------------------------------------------------------------
timings=()
script_started=$(date +%s.%N)
phase_started=
phase_name=
seconds_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
phase() {  # phase NAME [DETAIL]: ends the running phase (if any) and starts NAME
  if [ -n "$phase_name" ]; then timings+=("$(printf '  %-12s %7s s' "$phase_name" "$(seconds_since "$phase_started")")"); fi
  phase_name=$1; phase_started=$(date +%s.%N)
  [ -n "$1" ] && log "$1: ${2:-}"
  return 0
}

# The root is deleted, rebuilt and mounted into as root: only a directory this script made (its
# marker inside), an empty one or none at all, never a path that happens to hold something else.
complete="$root/.gatehouse-debootstrap-complete"
partial_marker=.gatehouse-debootstrap-partial
for dir in "$root" "$root.partial"; do
  if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ] \
     && [ ! -f "$dir/.gatehouse-debootstrap-complete" ] && [ ! -f "$dir/$partial_marker" ]; then
    fail "$dir is not empty and was not made by this script (no marker file): refusing to delete or mount into it"
  fi
done

# /proc in the root; a run killed with SIGKILL leaves it mounted, so a mount found at start is
# a stale one of ours: replaced, and unmounted at exit.
unmount_proc() { umount "$root/proc" 2>/dev/null || umount -l "$root/proc" 2>/dev/null || true; }

install_dir="$root/opt/gatehouse-package-test"
data_dir="$root/var/lib/gatehouse-package-test"
work=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-test-package.XXXXXX")
server_pid=
mock_pid=
mounted_proc=0
cleanup() {
  local rc=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  if [ -n "$mock_pid" ]; then kill -TERM "$mock_pid" 2>/dev/null || true; wait "$mock_pid" 2>/dev/null || true; fi
  if [ "$mounted_proc" = 1 ]; then unmount_proc; fi
  rm -rf "$install_dir" "$data_dir" "$work"
  phase ""
  printf 'test-package.sh timings:\n' >&2
  printf '%s\n' "${timings[@]}" >&2
  printf '  %-12s %7s s\n' "total" "$(seconds_since "$script_started")" >&2
  if [ "$rc" = 0 ]; then log "PASSED: the tarball runs and meters a real SDK call in a minimal Debian root"
  else printf 'test-package.sh: FAILED (exit %s)\n' "$rc" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the tarball --------------------------------------------------------------------------------
if [ -z "$tarball" ]; then
  phase package "scripts/package.sh"
  tarball=$(bash scripts/package.sh | tail -1)
fi
[ -f "$tarball" ] || fail "no tarball at $tarball"
tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")

phase checksum "sha256sum --check $(basename "$tarball").sha256"
[ -f "$tarball.sha256" ] || fail "no $tarball.sha256"
(cd "$(dirname "$tarball")" && sha256sum --check --strict "$(basename "$tarball").sha256" >&2) || fail "checksum mismatch"

# --- a minimal Debian root, cached --------------------------------------------------------------
if [ -f "$complete" ]; then
  phase debian-root "cached at $root"
else
  phase debian-root "debootstrap --variant=minbase bookworm $root $mirror"
  if ! command -v debootstrap >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  fi
  # Into a fresh directory renamed only once complete, so an interrupted run leaves nothing half-made.
  # An interrupted debootstrap can leave its /proc and /sys mounted: unmount before deleting.
  for dir in "$root" "$root.partial"; do
    awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount -l
  done
  rm -rf "$root" "$root.partial"
  mkdir -p "$root.partial"
  touch "$root.partial/$partial_marker"
  debootstrap --variant=minbase bookworm "$root.partial" "$mirror" > "$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap failed"; }
  rm -rf "$root.partial/var/cache/apt/archives"/*.deb "$root.partial/$partial_marker"
  mv "$root.partial" "$root"
  date -u +%FT%TZ > "$complete"
fi
# The point of the root: no Swift anywhere in it (each place checked on its own).
for swift_path in /usr/lib/swift /opt/swift /usr/bin/swift /usr/local/bin/swift; do
  if [ -e "$root$swift_path" ] || [ -L "$root$swift_path" ]; then fail "the Debian root has a Swift toolchain: $swift_path"; fi
done
if chroot "$root" sh -c 'command -v swift' >/dev/null 2>&1; then fail "the Debian root has swift on its PATH"; fi

# --- unpack -------------------------------------------------------------------------------------
phase unpack "into $install_dir"
rm -rf "$install_dir" "$data_dir"
mkdir -p "$install_dir" "$data_dir"
tar -xzf "$tarball" -C "$install_dir"
top=$(ls "$install_dir")
[ "$(echo "$top" | wc -l)" = 1 ] || fail "the tarball has more than one top-level entry: $top"
inside="/opt/gatehouse-package-test/$top"
for f in bin/gatehouse gatehouse.example.yaml systemd/gatehouse.service README.txt; do
  [ -e "$install_dir/$top/$f" ] || fail "the tarball lacks $top/$f"
done
if [ -f LICENSE ] && [ ! -f "$install_dir/$top/LICENSE" ]; then fail "the tarball lacks $top/LICENSE"; fi
# Run as nobody, as a service user would: the data directory is the only thing it writes.
chown 65534:65534 "$data_dir"
run() { chroot --userspec=65534:65534 "$root" env -i PATH=/usr/bin:/bin HOME=/nonexistent "$@"; }

# The Swift runtime reads the command line from /proc/self/cmdline: without /proc every
# command sees no arguments, prints the help and exits 0. Every real system mounts it.
if mountpoint -q "$root/proc"; then log "unmounting a stale $root/proc (left by a killed run)"; unmount_proc; fi
mount -t proc proc "$root/proc"
mounted_proc=1

# The libraries the binary resolves in the root (ldd is in libc-bin, part of minbase). As nobody:
# ldd may run the binary's loader, and nothing from the tarball runs as root.
run ldd "$inside/bin/gatehouse" > "$work/ldd.out" || fail "ldd failed in the root: $(cat "$work/ldd.out")"
cat "$work/ldd.out" >&2
if grep -q 'not found' "$work/ldd.out"; then fail "a shared library is missing in the root"; fi
version=$(run "$inside/bin/gatehouse" --version)
[ "gatehouse-$version" = "$top" ] || fail "gatehouse --version printed '$version' in $top"
run "$inside/bin/gatehouse" check-config --config "$inside/gatehouse.example.yaml" > "$work/check-config.out" \
  || fail "the shipped gatehouse.example.yaml does not pass check-config in the root"
grep -q '^# configuration is valid' "$work/check-config.out" || fail "check-config did not check: $(head -3 "$work/check-config.out")"
log "gatehouse $version runs in the root; its example configuration is valid"

# --- serve, against a mock provider on the host -------------------------------------------------
phase serve "mock provider on the host, gatehouse serve in the root"
"$python" Tests/Support/mock_upstream.py --host 127.0.0.1 --port 0 --port-file "$work/mock.port" \
  > "$work/mock.log" 2>&1 &
mock_pid=$!
for _ in $(seq 1 100); do [ -s "$work/mock.port" ] && break; sleep 0.1; done
[ -s "$work/mock.port" ] || { cat "$work/mock.log" >&2; fail "the mock provider did not start"; }
mock_port=$(cat "$work/mock.port")

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
admin_token=package-test-admin-token-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
cat > "$install_dir/test.yaml" <<EOF
host: 127.0.0.1
port: $port
data_dir: /var/lib/gatehouse-package-test
log_format: json
providers:
  - name: up
    kind: openai
    base_url: http://127.0.0.1:$mock_port/v1
    api_key: sk-package-test-upstream-key
recorder:
  flush_interval_ms: 50
EOF
# chroot execs env, which execs gatehouse: $! is the server itself.
chroot --userspec=65534:65534 "$root" env -i PATH=/usr/bin:/bin HOME=/nonexistent \
  GATEHOUSE_ADMIN_TOKEN="$admin_token" "$inside/bin/gatehouse" serve --config /opt/gatehouse-package-test/test.yaml \
  > "$work/serve.log" 2>&1 &
server_pid=$!
base="http://127.0.0.1:$port"
ready=0
for _ in $(seq 1 300); do
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; fail "gatehouse serve exited"; }
  if curl -fsS "$base/ready" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.1
done
[ "$ready" = 1 ] || { cat "$work/serve.log" >&2; fail "gatehouse serve was not ready within 30 s"; }
curl -fsS "$base/health" >&2; echo >&2
# The static binary must run Swift concurrency on NIO's event loops (ConcurrencyExecutor): without
# it every call hops to Dispatch's threads and back, silently costing a third of its CPU.
grep -q '"executor":"nio-event-loops"' "$work/serve.log" \
  || { grep -i 'listening\|concurrency' "$work/serve.log" >&2; fail "the release binary did not move Swift concurrency onto NIO's event loops"; }

# --- a real SDK call ----------------------------------------------------------------------------
phase sdk-call "openai client (host) -> gatehouse (root) -> mock provider (host)"
sdk=$("$python" - "$base/v1" <<'EOF'
import json, sys
from openai import OpenAI
client = OpenAI(base_url=sys.argv[1], api_key="sk-caller-key-unused", max_retries=0, timeout=30)
reply = client.chat.completions.create(model="up/gpt-4o-mini",
                                       messages=[{"role": "user", "content": "Hello from a minimal Debian root"}])
assert reply.choices[0].message.content, "empty answer"
print(json.dumps({"input": reply.usage.prompt_tokens, "output": reply.usage.completion_tokens}))
EOF
) || { cat "$work/serve.log" >&2; fail "the SDK call failed"; }
log "the SDK saw usage $sdk"

# --- metered? -----------------------------------------------------------------------------------
phase metered "gatehouse usage, run in the root"
metered=0
for _ in $(seq 1 50); do
  usage=$(run GATEHOUSE_URL="$base" GATEHOUSE_ADMIN_TOKEN="$admin_token" "$inside/bin/gatehouse" usage --since 1h --json) \
    || fail "gatehouse usage failed"
  if "$python" - "$usage" "$sdk" <<'EOF'
import json, sys
totals, sdk = json.loads(sys.argv[1])["totals"], json.loads(sys.argv[2])
want = (1, sdk["input"], sdk["output"])
got = (totals["requests"], totals["input_tokens"], totals["output_tokens"])
sys.exit(0 if got == want else 1)
EOF
  then metered=1; break; fi
  sleep 0.2
done
[ "$metered" = 1 ] || fail "usage does not show the one call with the SDK's tokens: $usage (SDK: $sdk)"
run GATEHOUSE_URL="$base" GATEHOUSE_ADMIN_TOKEN="$admin_token" "$inside/bin/gatehouse" usage --since 1h >&2
seen=$(curl -fsS "http://127.0.0.1:$mock_port/__mock/requests")
"$python" -c 'import json, sys; r = json.loads(sys.argv[1]); r = r.get("requests", r) if isinstance(r, dict) else r; sys.exit(0 if len(r) == 1 else 1)' "$seen" \
  || fail "the mock provider did not see exactly one request: $seen"

# --- stop ---------------------------------------------------------------------------------------
phase stop "SIGTERM, drain, exit 0"
kill -TERM "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
[ "$status" = 0 ] || { tail -5 "$work/serve.log" >&2; fail "gatehouse exited $status on SIGTERM"; }
