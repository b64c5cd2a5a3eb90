#!/usr/bin/env python3
"""Figures for docs/scaling.md (standard library only; wrk and psql/sqlite3 on PATH).

    measure.py --gatehouse .build/release/gatehouse [--database-url postgres://…/EMPTY_DB]
               [--calls 100000] [--size-rate 1000] [--log-lines 200000] [--json out.json]

On a fresh store (SQLite in a temp dir, or the empty PostgreSQL database given), one
`gatehouse serve` with the built-in mock provider and the default recorder settings:

1. Load: `wrk -t1 -c32` for 10 s, then fixed 1000 and 200 calls/s for 10 s each
   (Benchmarks/load/loadgen.py), then 10 s idle, against POST /v1/chat/completions. Calls/s answered; on PostgreSQL, the database's committed
   transactions/s and inserted rows/s over each stage (pg_stat_database deltas).
2. Bytes per request record: `--calls` more calls, each with a user id, two properties and a
   correlation id (what a real app sends); the server is stopped (it flushes), then the growth
   of the `requests` table with its indexes (and TOAST; all partitions when partitioned) is
   divided by the rows added. SQLite: the `dbstat` sizes of the table and its indexes.
3. Bytes per log line: `--log-lines` lines of Benchmarks/telemetry's shape, POSTed as NDJSON,
   the ingest rate (lines stored per second), and `logs` size with its indexes per row.
"""
import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "telemetry"))
from bench_telemetry import free_port, make_line  # noqa: E402  (the telemetry benchmark's log lines and port helper)

BODY = json.dumps({"model": "mock/gpt-4o-mini", "max_tokens": 20,
                   "messages": [{"role": "user", "content": "Summarise the ticket in one sentence."}]})


def wait_ready(port, proc):
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gatehouse exited early")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ready")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("gatehouse did not become ready")


def psql(url, sql):
    out = subprocess.run(["psql", url, "-tAc", sql], check=True, capture_output=True, text=True).stdout
    return out.strip()


def pg_counters(url):
    xact, rows = psql(url, "SELECT xact_commit, tup_inserted FROM pg_stat_database WHERE datname = current_database()").split("|")
    return int(xact), int(rows)


def stage(name, url, run):
    """Runs `run()` (which returns calls answered) and the database's work during it."""
    before = pg_counters(url) if url else None
    # The statistics collector lags by up to 0.5 s (PGSTAT_MIN_INTERVAL); read after it settles.
    start = time.perf_counter()
    answered = run()
    seconds = time.perf_counter() - start
    result = {"stage": name, "seconds": round(seconds, 2), "calls": answered, "calls_per_second": round(answered / seconds)}
    if url:
        time.sleep(1.0)
        after = pg_counters(url)
        result.update({"xact_per_second": round((after[0] - before[0]) / seconds, 1),
                       "rows_inserted_per_second": round((after[1] - before[1]) / seconds),
                       "rows_inserted_per_call": round((after[1] - before[1]) / max(answered, 1), 2)})
    print(json.dumps(result), file=sys.stderr)
    return result


def wrk(port, seconds, connections, body_file):
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", os.path.join(HERE, "..", "load", "post.lua"),
                          f"http://127.0.0.1:{port}/v1/chat/completions"],
                         env=dict(os.environ, WRK_BODY_FILE=body_file), check=True, capture_output=True, text=True).stdout
    summary = json.loads(next(l for l in out.splitlines() if l.startswith("WRKJSON "))[8:])
    if summary["errors"]["status"] or summary["errors"]["connect"]:
        raise SystemExit(f"wrk saw errors: {summary['errors']}")
    return summary["requests"]


def loadgen(port, rate, seconds, body_file, headers=(), strict=True):
    command = [sys.executable, os.path.join(HERE, "..", "load", "loadgen.py"), "--url", f"http://127.0.0.1:{port}/v1/chat/completions",
               "--rate", str(rate), "--duration", str(seconds), "--warmup", "0", "--body-file", body_file]
    for h in headers:
        command += ["--header", h]
    out = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    target = next(iter(out["targets"].values()))
    if strict and (target["non_2xx"] or target["errors"]):
        raise SystemExit(f"loadgen saw failures: {target['status_counts']} {target['error_kinds']}")
    return target["ok_2xx"]


def sqlite_sizes(path, tables):
    def rows(sql):
        out = subprocess.run(["sqlite3", path, sql], check=True, capture_output=True, text=True).stdout
        return [line.split("|") for line in out.splitlines()]
    owner = dict(rows("SELECT name, tbl_name FROM sqlite_schema"))
    sizes = {}
    for name, size in rows("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
        if owner.get(name) in tables:
            sizes[owner[name]] = sizes.get(owner[name], 0) + int(size)
    return sizes


def count_rows(store, table):
    if store.startswith("postgres"):
        return int(psql(store, f"SELECT count(*) FROM {table}"))
    return int(subprocess.run(["sqlite3", store, f"SELECT count(*) FROM {table}"], check=True, capture_output=True, text=True).stdout)


def table_bytes(store, table):
    if store.startswith("postgres"):
        # A partitioned table's own size is 0: sum its partitions (and itself when plain).
        return int(psql(store, f"""SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c
            WHERE c.oid = '{table}'::regclass OR c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = '{table}'::regclass)"""))
    return sqlite_sizes(store, [table]).get(table, 0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--gatehouse", required=True)
    p.add_argument("--database-url")
    p.add_argument("--calls", type=int, default=100_000)
    p.add_argument("--size-rate", type=int, default=1000, help="calls/s while loading the records whose size is measured")
    p.add_argument("--log-lines", type=int, default=200_000)
    p.add_argument("--json")
    args = p.parse_args()

    work = tempfile.mkdtemp(prefix="gh-scaling-")
    body_file = os.path.join(work, "body.json")
    with open(body_file, "w") as f:
        f.write(BODY)
    port = free_port()
    command = [args.gatehouse, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", os.path.join(work, "data"),
               "--log-level", "warning"]
    if args.database_url:
        command += ["--database-url", args.database_url]
    store = args.database_url or "sqlite:" + os.path.join(work, "data", "gatehouse.sqlite")
    result = {"store": "postgres" if args.database_url else "sqlite", "stages": []}
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port, proc)
        url = args.database_url
        wrk(port, 3, 32, body_file)  # warm-up, not measured
        result["stages"].append(stage("max (wrk -t1 -c32, 10 s)", url, lambda: wrk(port, 10, 32, body_file)))
        for rate in [1000, 200]:
            result["stages"].append(stage(f"fixed {rate} calls/s, 10 s", url, lambda: loadgen(port, rate, 10, body_file)))
        time.sleep(2)
        result["stages"].append(stage("idle, 10 s", url, lambda: (time.sleep(10), 0)[1]))
        # Realistic records for the size: user, properties, correlation id.
        headers = ["Gatehouse-User-Id: user-4821", "Gatehouse-Property-Tenant: acme-corp", "Gatehouse-Property-Feature: ticket-summary",
                   "X-Request-Id: 4bf92f3577b34da6a3ce929d0e0e4736"]
        rate = args.size_rate
        # Sizes are deltas over this load alone (the stages above stored records without them).
        db = store[len("sqlite:"):] if store.startswith("sqlite:") else store
        rows0, bytes0 = count_rows(db, "requests"), table_bytes(db, "requests")
        # Sizes count whatever was stored, so a slow store here is no failure.
        loadgen(port, rate, args.calls / rate, body_file, headers, strict=False)
        # Log lines, as the telemetry benchmark sends them, 1,000 per POST.
        now_ms = int(time.time() * 1000)
        lines = [json.dumps(make_line(i, now_ms, args.log_lines)) for i in range(args.log_lines)]
        bodies = [("\n".join(lines[o:o + 1000]) + "\n").encode() for o in range(0, len(lines), 1000)]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start = time.perf_counter()
        for b in bodies:
            conn.request("POST", "/api/v1/logs", body=b, headers={"Content-Type": "application/x-ndjson"})
            r = conn.getresponse()
            r.read()
            if r.status >= 300:
                raise SystemExit(f"log ingest answered {r.status}")
        while True:
            conn.request("GET", "/api/v1/storage")
            kinds = json.loads(conn.getresponse().read())["kinds"]
            if next(k["rows"] for k in kinds if k["kind"] == "logs") >= args.log_lines:
                break
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        result["log_ingest_lines_per_second_one_connection"] = round(args.log_lines / seconds)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    if not store.startswith("postgres"):
        subprocess.run(["sqlite3", db, "PRAGMA wal_checkpoint(TRUNCATE)"], check=True, capture_output=True)
        result["sqlite_file_bytes"] = os.path.getsize(db)
    for table, (r0, b0) in [("requests", (rows0, bytes0)), ("logs", (0, 0))]:
        rows, size = count_rows(db, table) - r0, table_bytes(db, table) - b0
        result[table] = {"rows": rows, "bytes": size, "bytes_per_row": round(size / max(rows, 1))}
    if store.startswith("postgres"):
        result["database_bytes"] = int(psql(db, "SELECT pg_database_size(current_database())"))
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
