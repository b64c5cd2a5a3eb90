#!/usr/bin/env bash
# The release tarball: a Gatehouse that installs without Swift.
#
#   scripts/package.sh        -> dist/gatehouse-VERSION-linux-ARCH.tar.gz and its .sha256
#
# Builds `gatehouse` in release mode with the Swift runtime and Foundation linked in statically
# (and the brotli decoder too, which minimal Debian lacks), strips it, and packs it with the
# licence, a sample configuration, the systemd unit and install notes. It refuses a binary that
# needs a shared library outside glibc, libstdc++/libgcc and zlib: what every Linux has, and one
# that needs a newer glibc or libstdc++ than Debian 12's (the versions are read from the binary
# and written into README.txt).
#
# Environment:
#   GATEHOUSE_RELEASE_SCRATCH  build directory (default: .build-release in the repository)
#   GATEHOUSE_BUILD_LOCK       a file to `flock` around the compile only, when builds share a machine
#   GATEHOUSE_DIST_DIR         where the tarball goes (default: dist in the repository)
#   GATEHOUSE_MAX_GLIBC        the newest glibc the binary may need (default 2.36, Debian 12)
#   GATEHOUSE_MAX_GLIBCXX      the newest libstdc++ symbol version (default 3.4.30, GCC 12, Debian 12)
#   GATEHOUSE_ALLOW_NEWER_LIBC=1  pack a binary above those limits anyway (it will not run on Debian 12)
#   GATEHOUSE_PACKAGE_BINARY   pack this already-built binary instead of building one (to test the packing)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
scratch=${GATEHOUSE_RELEASE_SCRATCH:-$repo/.build-release}
dist=${GATEHOUSE_DIST_DIR:-$repo/dist}

log() { printf '==> %s\n' "$*" >&2; }
fail() { printf 'package.sh: %s\n' "$*" >&2; exit 1; }

for tool in strip objcopy readelf sha256sum tar; do
  command -v "$tool" >/dev/null || fail "$tool is needed (binutils, coreutils, tar)"
done

if [ -n "${GATEHOUSE_PACKAGE_BINARY:-}" ]; then
  binary=$GATEHOUSE_PACKAGE_BINARY
  log "packing $binary (GATEHOUSE_PACKAGE_BINARY), no build"
else
  command -v swift >/dev/null || fail "swift is needed (a Swift toolchain)"

  # --- build: a release binary with the Swift runtime linked in ------------------------------
  # CCompression links -lbrotlidec; a linker script of that name in a directory searched first
  # makes the linker take Debian's static archives instead, so the binary does not need libbrotli1.
  staticlibs="$scratch/static-libs"
  mkdir -p "$staticlibs"
  multiarch=$(gcc -print-multiarch 2>/dev/null || echo "$(uname -m)-linux-gnu")
  brotli_dir=/usr/lib/$multiarch
  if [ -f "$brotli_dir/libbrotlidec.a" ] && [ -f "$brotli_dir/libbrotlicommon.a" ]; then
    printf 'INPUT(%s/libbrotlidec.a %s/libbrotlicommon.a)\n' "$brotli_dir" "$brotli_dir" > "$staticlibs/libbrotlidec.so"
  else
    fail "libbrotli-dev's static archives are missing ($brotli_dir/libbrotlidec.a): apt-get install libbrotli-dev"
  fi

  build=(swift build -c release --product gatehouse --static-swift-stdlib --scratch-path "$scratch"
         -Xlinker -L"$staticlibs")
  log "building: ${build[*]}"
  started=$(date +%s)
  # Build output goes to stderr: stdout is only the tarball's path, for scripts/test-package.sh.
  if [ -n "${GATEHOUSE_BUILD_LOCK:-}" ]; then flock "$GATEHOUSE_BUILD_LOCK" "${build[@]}" >&2; else "${build[@]}" >&2; fi
  log "built in $(( $(date +%s) - started )) s"
  binary="$scratch/release/gatehouse"
fi
[ -x "$binary" ] || fail "no binary at $binary"

# --- what it needs from the OS ----------------------------------------------------------------
needed=$(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort)
log "shared libraries the binary needs: $(echo $needed)"
for lib in $needed; do
  case "$lib" in
    libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|libutil.so.*|ld-linux*) ;;  # glibc (libc6)
    libstdc++.so.*|libgcc_s.so.*) ;;                                                    # libstdc++6, libgcc-s1
    libz.so.*) ;;                                                                       # zlib1g
    *) fail "the binary needs $lib, which a machine without Swift may lack" ;;
  esac
done

# The newest symbol versions it needs: the oldest glibc and libstdc++ it runs on.
newest_symbol_version() {  # newest_symbol_version PREFIX: e.g. 2.35 for GLIBC_
  readelf -V --wide "$binary" | grep -o "$1[0-9][0-9.]*" | sed "s/^$1//" | sort -Vu | tail -1
}
above() { [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | tail -1)" = "$1" ]; }  # above A B: A > B
glibc=$(newest_symbol_version GLIBC_)
glibcxx=$(newest_symbol_version GLIBCXX_)
[ -n "$glibc" ] || fail "no GLIBC_ symbol versions in $binary (readelf -V)"
max_glibc=${GATEHOUSE_MAX_GLIBC:-2.36}
max_glibcxx=${GATEHOUSE_MAX_GLIBCXX:-3.4.30}
log "the binary needs glibc $glibc (limit $max_glibc) and libstdc++ GLIBCXX_${glibcxx:-none} (limit $max_glibcxx)"
if [ "${GATEHOUSE_ALLOW_NEWER_LIBC:-0}" != 1 ]; then
  above "$glibc" "$max_glibc" && fail "the binary needs glibc $glibc, newer than $max_glibc (GATEHOUSE_MAX_GLIBC): build on an older distribution, or set GATEHOUSE_ALLOW_NEWER_LIBC=1"
  [ -n "$glibcxx" ] && above "$glibcxx" "$max_glibcxx" && fail "the binary needs libstdc++ GLIBCXX_$glibcxx, newer than $max_glibcxx (GATEHOUSE_MAX_GLIBCXX): build on an older distribution, or set GATEHOUSE_ALLOW_NEWER_LIBC=1"
fi
libstdcxx_note=${glibcxx:+libstdc++ with GLIBCXX_$glibcxx}
libstdcxx_note=${libstdcxx_note:-libstdc++}

version=$("$binary" --version)
[[ "$version" =~ ^[0-9A-Za-z.+-]+$ ]] || fail "unexpected version string: $version"
arch=$(uname -m)
name="gatehouse-$version"
tarball="$name-linux-$arch.tar.gz"

# --- assemble ---------------------------------------------------------------------------------
stage=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-package.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root="$stage/$name"
mkdir -p "$root/bin" "$root/systemd" "$dist"

install -m 0755 "$binary" "$root/bin/gatehouse"
# Debug symbols beside the tarball (not in it), linked by build id, for symbolicating crashes.
objcopy --only-keep-debug "$root/bin/gatehouse" "$dist/$name-linux-$arch.debug"
strip --strip-all "$root/bin/gatehouse"
objcopy --add-gnu-debuglink="$dist/$name-linux-$arch.debug" "$root/bin/gatehouse"

if [ -f LICENSE ]; then
  install -m 0644 LICENSE "$root/LICENSE"
else
  log "warning: the repository has no LICENSE file; the tarball ships without one"
fi
install -m 0644 examples/gatehouse.example.yaml "$root/gatehouse.example.yaml"
install -m 0644 deploy/systemd/gatehouse.service "$root/systemd/gatehouse.service"
cat > "$root/README.txt" <<EOF
Gatehouse $version for Linux $arch
===================================

The operations hub for AI apps: an LLM gateway that meters every call, plus logs, errors,
alerts and a web console, in one binary. It needs no Swift toolchain: the Swift runtime is
linked in. From the system it needs only glibc $glibc or newer, $libstdcxx_note
or newer, libgcc, and zlib (versions read from this binary's symbols): Debian 12 has them in its
smallest installation (libc6, libstdc++6, libgcc-s1, zlib1g). To call providers over HTTPS it
needs the CA bundle of ca-certificates (/etc/ssl/certs). It also needs /proc mounted, as every
normal system, container and systemd service has it (without it the binary cannot read its own
command line).

There is no published release of Gatehouse yet: this tarball was built from a source checkout
with scripts/package.sh. Build your own the same way; a checksum proves only that the file is
the one its builder packed.

Check the download before unpacking it:
  sha256sum --check $tarball.sha256

Contents
  bin/gatehouse               the server and its CLI
  gatehouse.example.yaml      a starting configuration (gatehouse check-config --config FILE)
  systemd/gatehouse.service   a hardened systemd unit
  LICENSE                     the licence (when the source tree has one)

Try it
  ./bin/gatehouse serve       # http://127.0.0.1:8080, data in ./gatehouse-data
  curl -s http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model": "mock/gpt-4o-mini", "messages": [{"role": "user", "content": "Hello!"}]}'
  ./bin/gatehouse usage

Install as a service (as root, in this directory)
  install -m 0755 bin/gatehouse /usr/local/bin/gatehouse
  useradd --system --home-dir /var/lib/gatehouse --shell /usr/sbin/nologin gatehouse
  install -d -m 0750 -o root -g gatehouse /etc/gatehouse
  install -m 0640 -o root -g gatehouse gatehouse.example.yaml /etc/gatehouse/gatehouse.yaml
  install -m 0600 /dev/null /etc/gatehouse/gatehouse.env   # GATEHOUSE_ADMIN_TOKEN=..., OPENAI_API_KEY=...
  install -m 0644 systemd/gatehouse.service /etc/systemd/system/
  systemctl daemon-reload && systemctl enable --now gatehouse
  curl -fsS http://127.0.0.1:8080/ready

Documentation: docs/deployment.md and docs/configuration.md in the source repository.
EOF

# The sample configuration must be one the packed binary accepts.
"$root/bin/gatehouse" check-config --config "$root/gatehouse.example.yaml" >/dev/null \
  || fail "gatehouse.example.yaml does not pass check-config"

# Reproducible metadata: owner root, files dated by the last commit.
mtime=$(git log -1 --format=%cI 2>/dev/null || date -u +%FT%TZ)
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="$mtime" \
    -C "$stage" -czf "$dist/$tarball.tmp" "$name"
mv "$dist/$tarball.tmp" "$dist/$tarball"
(cd "$dist" && sha256sum "$tarball" > "$tarball.sha256")

log "$dist/$tarball ($(du -h "$dist/$tarball" | cut -f1)), sha256 $(cut -d' ' -f1 "$dist/$tarball.sha256")"
echo "$dist/$tarball"
