#!/usr/bin/env python3
"""Where Gatehouse's CPU goes: a `perf record -g` profile summed into the parts of the hot path.

    python3 Benchmarks/load/cpu_profile.py perf.data [--markdown] [--top 25]

Reads `perf report --no-children --sort dso,sym` (self time of each symbol, all threads of the
recorded process), demangles Swift names with `swift demangle` when it is on the PATH, and puts
every symbol in the first part whose pattern matches (the PARTS list below, in order). Prints the
share of samples per part, then the heaviest symbols, so a change to the hot path shows up as
moved percentages (issue 14: "a table of where the CPU goes ... before and after each step").
Standard library only. `run.sh --perf FILE` records the profile during Gatehouse's first
maximum-throughput stage and writes this table to FILE.
"""
import argparse
import re
import shutil
import subprocess
import sys

# (part, pattern on "dso symbol"), first match wins. Gatehouse's own modules come before the
# libraries they call, the runtime last but one: a symbol is charged to the code it belongs to.
PARTS = [
    ("kernel", r"^\[kernel"),
    ("scanning (JSON scanner, SSE parser)", r"JSONObjectScanner|SSEParser|InboundRequest"),
    ("metering (usage, cost, estimates)", r"CallMeter|UsageExtraction|TokenUsage|PriceTable|MicroDollars|TokenEstimator|CallMetadata"),
    ("controls (keys, limits, budgets, switches)", r"GatehouseGateway\.(Controls|QuotaLedger|ControlState|Admission|TokenCaps|KillSwitch)|VirtualKey"),
    ("recorder and SQLite", r"Recorder|SQLRequestStore|SQLiteNIO|SQLiteDriver|sqlite3|SQLValue|SQLBuilder|^wal[A-Z]|^pager|^btree|^vdbe|Vdbe|Btree|Pager|^pcache|^expr|resolveExpr|^balance"),
    ("metrics", r"Prometheus|CoreMetrics|Metrics\.|GatewayMetrics|HTTPMetricsMiddleware|ProviderHealth|MetricHandle|MetricLabel"),
    ("logging", r"Logging\.|Logger|LogHandler|CorrelationID"),
    ("gateway (routing, relay, resilience, rest)", r"GatehouseGateway|GatehouseHTTP|GatehouseCore|GatehouseServer|GatehouseTelemetry|GatehouseAlerts"),
    ("upstream client (AsyncHTTPClient)", r"AsyncHTTPClient"),
    ("HTTP server (Hummingbird, NIOHTTP1, HTTPTypes)", r"Hummingbird|NIOHTTP1|HTTPTypes|NIOHTTPTypes|NIOExtras|llhttp"),
    ("NIO (event loops, channels, buffers)", r"NIOCore|NIOPosix|NIOConcurrencyHelpers|_NIO|NIOEmbedded|NIOAsync"),
    ("Swift concurrency runtime", r"swift_task|swift_job|swift_continuation|swift::|swift_asyncLet|_swift_task|Concurrency|AsyncStream|AsyncThrowingStream|TaskGroup|withTaskCancellationHandler|swift_defaultActor|swift_actor|withStatusRecordLock|StatusRecord"),
    ("retain/release", r"swift_retain|swift_release|swift_bridgeObjectRe|swift_unknownObjectRe|swift_weak|_swift_release|_swift_retain|swift_isUniquelyReferenced"),
    ("Foundation", r"Foundation|CoreFoundation|\bCF[A-Z_]|_CF|NSString|NSData|JSONSerialization|JSONEncoder|JSONDecoder|__CF"),
    ("malloc, locks, libc", r"malloc|free|calloc|realloc|pthread|__lll|futex|memcpy|memmove|memset|memcmp|strlen|libc\.so|libc-|_int_|tcache|cfree|unlink_chunk|sysmalloc|arena_|__GI_|epoll|pwrite|pread|__vdso|__libc|syscall"),
    ("Dispatch (timers, queues)", r"_dispatch|dispatch_"),
    ("Swift stdlib and other runtime", r"libswift|Swift\.|swift_|\$s|__swift|getCache|Metadata|metadata|Witness|witness|tryCast|dynamicCast"),
]


def perf_report(data):
    cmd = ["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "--stdio", "-g", "none",
           "--percent-limit", "0", "-F", "overhead,dso,sym"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"cpu_profile.py: perf report failed: {out.stderr.strip()[:500]}")
    rows = []
    # "    12.34%  gatehouse          [.] $s7NIOCore..."
    line_re = re.compile(r"^\s*([0-9.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)$")
    for line in out.stdout.splitlines():
        m = line_re.match(line)
        if m:
            rows.append([float(m.group(1)), m.group(2), m.group(3).strip()])
    return rows


def demangle(rows):
    tool = shutil.which("swift")
    if not tool:
        return rows
    names = "\n".join(r[2] for r in rows)
    out = subprocess.run([tool, "demangle", "--simplified"], input=names, capture_output=True, text=True, check=False)
    lines = out.stdout.split("\n")
    if out.returncode == 0 and len(lines) >= len(rows):
        for r, d in zip(rows, lines):
            r.append(d)
    return rows


def classify(row):
    dso, sym = row[1], row[3] if len(row) > 3 else row[2]
    text = f"{dso} {sym} {row[2]}" if dso.startswith("[kernel") else f"{sym} {row[2]}"
    for part, pattern in PARTS:
        if re.search(pattern, text if part != "kernel" else dso):
            return part
    return "other"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", help="perf.data written by perf record -g")
    ap.add_argument("--top", type=int, default=25, help="how many of the heaviest symbols to list")
    args = ap.parse_args()
    rows = demangle(perf_report(args.data))
    if not rows:
        sys.exit("cpu_profile.py: no samples in the report")
    total = sum(r[0] for r in rows)
    parts = {}
    for r in rows:
        parts[classify(r)] = parts.get(classify(r), 0.0) + r[0]
    print("| part of the path | share of Gatehouse's CPU samples |")
    print("|---|---:|")
    for part, share in sorted(parts.items(), key=lambda kv: -kv[1]):
        print(f"| {part} | {100 * share / total:.1f}% |")
    print()
    print(f"Heaviest {args.top} symbols (self time):")
    print()
    print("| share | part | symbol |")
    print("|---:|---|---|")
    for r in sorted(rows, key=lambda r: -r[0])[: args.top]:
        name = (r[3] if len(r) > 3 else r[2]).replace("|", "\\|")
        if len(name) > 110:
            name = name[:107] + "..."
        print(f"| {100 * r[0] / total:.1f}% | {classify(r)} | `{name}` |")
    unplaced = sorted((r for r in rows if classify(r) == "other"), key=lambda r: -r[0])[:10]
    if unplaced:
        print()
        print("Heaviest symbols no part matched (extend PARTS when one matters): "
              + ", ".join(f"`{(r[3] if len(r) > 3 else r[2])[:60]}` {100 * r[0] / total:.1f}%" for r in unplaced))


if __name__ == "__main__":
    main()
