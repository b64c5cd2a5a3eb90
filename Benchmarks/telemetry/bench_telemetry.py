#!/usr/bin/env python3
"""Telemetry benchmark: sustained log ingest and query latency (standard library only).

    bench_telemetry.py --gatehouse .build/release/gatehouse [--database-url postgres://…]
                       [--lines 1000000] [--batch 1000] [--connections 4] [--json out.json]

1. Starts `gatehouse serve` on a fresh store (SQLite in a temp dir, or the PostgreSQL URL given).
2. Ingest: `--connections` clients POST NDJSON batches of `--batch` lines to /api/v1/logs until
   `--lines` lines are accepted; the rate is lines *stored* per second (the clock stops when the
   store holds them all, read from /api/v1/storage), not lines accepted.
3. Baseline, same run, same machine (SQLite only): Python's sqlite3 inserting the same rows into
   a table of the same shape and indexes, WAL, synchronous=NORMAL, one transaction per batch.
4. Queries over the stored lines, each run 30 times after 3 warm-ups: `level:error timestamp:>-1h`
   (first page, 100 lines), the correlation timeline of one id, and `correlation_id:X` as a query.
"""
import argparse
import http.client
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

LEVELS = ["info"] * 14 + ["debug"] * 3 + ["warn"] * 1 + ["error"] * 2  # 10% errors
FUNCTIONS = ["tasks.list", "tasks.create", "tasks.update", "users.get", "billing.charge"]


def make_line(i, now_ms, total):
    # Over the last two hours, in the order they happened (as an app's logs arrive), so
    # `timestamp:>-1h` selects about half.
    ts = now_ms - 7_200_000 + i * 7_200_000 // total
    level = LEVELS[i % len(LEVELS)]
    return {
        "timestamp": ts, "level": level, "message": f"{'Slow query detected' if i % 50 == 0 else 'handled request'} #{i}",
        "service": "api" if i % 3 else "worker", "environment": "prod", "correlationId": f"corr-{i // 10}",
        "function": FUNCTIONS[i % len(FUNCTIONS)], "duration": round((i % 400) * 0.73, 2), "dbCalls": i % 20,
        "docsScanned": i % 500, "userId": f"u{i % 997}", "http": {"method": "GET" if i % 4 else "POST", "status": 500 if level == "error" else 200},
    }


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    return response.status, data


def wait_ready(port, proc, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gatehouse exited early")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            if request(conn, "GET", "/ready")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("gatehouse did not become ready")


def stored_rows(port, kind="logs"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    status, data = request(conn, "GET", "/api/v1/storage")
    return next(k["rows"] for k in json.loads(data)["kinds"] if k["kind"] == kind)


def run_workers(port, bodies, connections, send):
    """Each of `connections` threads takes the next body and calls send(conn, body) until none
    are left; send returns an error to stop on, or None. Raises if any worker stopped on one."""
    queue = list(range(len(bodies)))
    lock = threading.Lock()
    errors = []

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not queue:
                    return
                index = queue.pop()
            error = send(conn, bodies[index], lock)
            if error:
                errors.append(error)
                return

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"ingest failed: {errors[:3]}")


def ingest(port, bodies, connections):
    """POSTs the prepared NDJSON bodies over `connections` keep-alive connections."""
    accepted = [0]

    def send(conn, body, lock):
        while body:
            status, data = request(conn, "POST", "/api/v1/logs", body, {"Content-Type": "application/x-ndjson"})
            if status == 503:  # queue full: back off and resend, as a client should
                time.sleep(0.05)
                continue
            if status != 200:
                return (status, data[:200])
            answer = json.loads(data)
            with lock:
                accepted[0] += answer["accepted"]
            # Lines refused because the queue filled mid-batch are sent again.
            again = {r["index"] for r in answer["rejected"] if "send this line again" in r["reason"]}
            body = ("\n".join(l for i, l in enumerate(body.decode().splitlines()) if i in again) + "\n").encode() if again else b""
        return None

    run_workers(port, bodies, connections, send)
    return accepted[0]


def sqlite_baseline(lines, batch):
    """The same rows straight into SQLite from Python: the floor for a SQLite-backed store."""
    directory = tempfile.mkdtemp(prefix="gh-bench-sqlite-")
    db = sqlite3.connect(os.path.join(directory, "baseline.sqlite"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("""CREATE TABLE logs (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, project TEXT NOT NULL, severity SMALLINT NOT NULL,
                  message TEXT NOT NULL, service TEXT, environment TEXT, correlation_id TEXT, function TEXT, duration_us INTEGER,
                  slow SMALLINT NOT NULL DEFAULT 0, attributes TEXT NOT NULL DEFAULT '{}')""")
    for index in ["ts", "severity, ts", "service, ts", "function, ts", "correlation_id"]:
        db.execute(f"CREATE INDEX i_{index.replace(', ', '_')} ON logs ({index})")
    severity = {"trace": 1, "debug": 2, "info": 3, "warn": 4, "error": 5, "fatal": 6}
    well_known = {"timestamp", "level", "message", "service", "environment", "correlationId", "function", "duration"}
    start = time.perf_counter()
    for offset in range(0, len(lines), batch):
        rows = []
        for line in lines[offset:offset + batch]:
            obj = json.loads(line)  # the same parse Gatehouse does
            attributes = {k: v for k, v in obj.items() if k not in well_known}
            rows.append((obj["timestamp"] * 1000, "default", severity[obj["level"]], obj["message"], obj["service"], obj["environment"],
                         obj["correlationId"], obj["function"], int(obj["duration"] * 1000), 0, json.dumps(attributes)))
        db.execute("BEGIN")
        db.executemany("INSERT INTO logs (ts, project, severity, message, service, environment, correlation_id, function, duration_us, slow, attributes)"
                       " VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    shutil.rmtree(directory)
    return len(lines) / elapsed


def timed(port, path, runs=30, warmups=3):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    samples = []
    for i in range(warmups + runs):
        start = time.perf_counter()
        status, data = request(conn, "GET", path)
        elapsed = (time.perf_counter() - start) * 1000
        if status != 200:
            raise SystemExit(f"{path}: {status} {data[:200]}")
        if i >= warmups:
            samples.append(elapsed)
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 2), "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 2),
            "rows": len(json.loads(data).get("data", json.loads(data).get("timeline", [])))}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gatehouse", required=True)
    parser.add_argument("--database-url")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--json")
    args = parser.parse_args()

    now_ms = int(time.time() * 1000)
    print(f"preparing {args.lines:,} lines in batches of {args.batch:,}…", file=sys.stderr)
    lines = [json.dumps(make_line(i, now_ms, args.lines)) for i in range(args.lines)]
    bodies = [("\n".join(lines[o:o + args.batch]) + "\n").encode() for o in range(0, len(lines), args.batch)]

    data_dir = tempfile.mkdtemp(prefix="gh-bench-telemetry-")
    port = free_port()
    command = [args.gatehouse, "serve", "--port", str(port), "--data-dir", data_dir, "--log-format", "json", "--log-level", "warning"]
    if args.database_url:
        command += ["--database-url", args.database_url]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result = {"store": "postgres" if args.database_url else "sqlite", "lines": args.lines, "batch": args.batch, "connections": args.connections}
    try:
        wait_ready(port, proc)
        start = time.perf_counter()
        accepted = ingest(port, bodies, args.connections)
        accepted_at = time.perf_counter() - start
        while stored_rows(port) < accepted:
            time.sleep(0.05)
        stored_at = time.perf_counter() - start
        result.update({"accepted": accepted, "accept_seconds": round(accepted_at, 2), "store_seconds": round(stored_at, 2),
                       "lines_per_second": round(accepted / stored_at)})
        print(f"ingest: {accepted:,} lines stored in {stored_at:.2f}s = {accepted / stored_at:,.0f} lines/s", file=sys.stderr)
        q = urllib.parse.quote("level:error timestamp:>-1h")
        result["query_level_error_last_hour"] = timed(port, f"/api/v1/logs?q={q}")
        cid = f"corr-{random.Random(7).randrange(args.lines // 10)}"
        result["correlation_timeline"] = timed(port, f"/api/v1/correlation/{cid}")
        result["query_correlation_id"] = timed(port, "/api/v1/logs?q=" + urllib.parse.quote(f"correlation_id:{cid}"))
        for name in ["query_level_error_last_hour", "correlation_timeline", "query_correlation_id"]:
            print(f"{name}: {result[name]}", file=sys.stderr)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(data_dir, ignore_errors=True)
    if not args.database_url:
        baseline = sqlite_baseline(lines, args.batch)
        result["baseline_python_sqlite3_lines_per_second"] = round(baseline)
        result["ratio_to_baseline"] = round(result["lines_per_second"] / baseline, 2)
        print(f"baseline (python sqlite3, same rows): {baseline:,.0f} lines/s; gatehouse/baseline = {result['ratio_to_baseline']}", file=sys.stderr)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
