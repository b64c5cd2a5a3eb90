#!/usr/bin/env python3
"""Trace benchmark: span ingest and the transactions table over what it stored (standard library only).

    bench_spans.py --gatehouse .build/release/gatehouse [--database-url postgres://…]
                   [--spans 1000000] [--per-transaction 10] [--per-envelope 50] [--connections 4] [--json out.json]

1. Starts `gatehouse serve` on a fresh store (SQLite in a temp dir, or the PostgreSQL URL given).
2. Ingest: `--connections` clients POST Sentry envelopes, each holding `--per-envelope`
   transactions of `--per-transaction` spans (the transaction and its child spans, as sentry-sdk
   sends them), until `--spans` spans are stored; the rate is spans *stored* per second (the clock
   stops when /api/v1/storage counts them all).
3. Baseline, same run, same machine (SQLite only): Python's sqlite3 inserting the same rows into a
   table created from the very `CREATE TABLE` and `CREATE INDEX` statements Gatehouse's own
   database holds, WAL, synchronous=NORMAL, one transaction per envelope.
4. Queries over the stored spans, each run 30 times after 3 warm-ups: the transactions table for
   the last 2 hours (every span), the same table for the last 10 minutes, one trace's tree, and the
   query-language stage `is_transaction:true | p95(duration) by transaction`.
"""
import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import http.client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_telemetry import free_port, request, run_workers, stored_rows, timed, wait_ready  # noqa: E402

NAMES = ["GET /api/tasks", "POST /api/tasks", "GET /api/tasks/{id}", "PATCH /api/tasks/{id}", "GET /api/users/me",
         "POST /api/billing/charge", "GET /health", "tasks.list", "tasks.sync", "POST /api/chat"]
CHILD_OPS = [("db.query", "SELECT * FROM tasks WHERE owner = ?"), ("db.query", "UPDATE tasks SET done = true"),
             ("http.client", "POST https://api.openai.com/v1/chat/completions"), ("cache.get", "tasks:list"),
             ("function", "serialize_tasks")]


def transaction(i, total, now, per_transaction, rng):
    """One transaction and its child spans, over the last two hours in the order they ran."""
    start = now - 7200 + i * 7200 / total
    name = NAMES[i % len(NAMES)]
    duration = 0.02 + (i % 97) * 0.004 + (0.8 if i % 50 == 0 else 0)
    trace_id, root_id = "%032x" % rng.getrandbits(128), "%016x" % rng.getrandbits(64)
    spans = []
    for c in range(per_transaction - 1):
        op, description = CHILD_OPS[c % len(CHILD_OPS)]
        child_start = start + duration * c / per_transaction
        spans.append({"span_id": "%016x" % rng.getrandbits(64), "parent_span_id": root_id, "trace_id": trace_id, "op": op,
                      "description": description, "start_timestamp": child_start,
                      "timestamp": child_start + duration / per_transaction * 0.8, "status": "ok",
                      "data": {"db.system": "postgresql"} if op == "db.query" else {}})
    return {"type": "transaction", "event_id": "%032x" % rng.getrandbits(128), "transaction": name, "platform": "python",
            "start_timestamp": start, "timestamp": start + duration, "environment": "prod", "release": "tasks@1.4.2",
            "server_name": "api-1", "tags": {"function": name}, "contexts": {"trace": {
                "trace_id": trace_id, "span_id": root_id, "op": "http.server", "status": "internal_error" if i % 40 == 0 else "ok"}},
            "spans": spans}


def envelope(transactions):
    lines = [json.dumps({"sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})]
    for t in transactions:
        payload = json.dumps(t)
        lines.append(json.dumps({"type": "transaction", "length": len(payload.encode())}))
        lines.append(payload)
    return ("\n".join(lines) + "\n").encode()


def ingest(port, bodies, connections):
    def send(conn, body, _lock):
        while True:
            status, data = request(conn, "POST", "/api/1/envelope/", body, {"Content-Type": "application/x-sentry-envelope"})
            if status in (429, 503):  # full queue: back off and send again, as sentry-sdk does
                time.sleep(0.05)
                continue
            return None if status == 200 else (status, data[:200])

    run_workers(port, bodies, connections, send)


def schema_of(data_dir):
    """The spans table's and its indexes' statements, as Gatehouse created them."""
    path = next(os.path.join(root, f) for root, _, files in os.walk(data_dir) for f in files if f.endswith((".sqlite", ".db")))
    db = sqlite3.connect(path)
    rows = db.execute("SELECT sql FROM sqlite_master WHERE tbl_name = 'spans' AND sql IS NOT NULL ORDER BY type DESC").fetchall()
    db.close()
    return [r[0] for r in rows]


def sqlite_baseline(envelopes, schema):
    directory = tempfile.mkdtemp(prefix="gh-bench-spans-")
    db = sqlite3.connect(os.path.join(directory, "baseline.sqlite"), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    for statement in schema:
        db.execute(statement)
    spans = 0
    start = time.perf_counter()
    for body in envelopes:
        rows = []
        lines = body.decode().splitlines()
        for line in lines[2::2]:
            t = json.loads(line)  # the same parse Gatehouse does
            trace = t["contexts"]["trace"]
            micros = lambda s: int(s * 1_000_000)  # noqa: E731
            rows.append((trace["trace_id"], trace["span_id"], None, "1", "sentry", t["server_name"], t["transaction"], trace["op"],
                         t["transaction"], 1, micros(t["start_timestamp"]), micros(t["timestamp"]) - micros(t["start_timestamp"]),
                         trace["status"], int(trace["status"] != "ok"), t["environment"], t["release"], trace["trace_id"],
                         json.dumps(t["tags"])))
            for s in t["spans"]:
                rows.append((s["trace_id"], s["span_id"], s["parent_span_id"], "1", "sentry", t["server_name"], s["description"], s["op"],
                             t["transaction"], 0, micros(s["start_timestamp"]), micros(s["timestamp"]) - micros(s["start_timestamp"]),
                             s["status"], 0, t["environment"], t["release"], trace["trace_id"], json.dumps(s["data"])))
        db.execute("BEGIN")
        db.executemany("INSERT INTO spans (trace_id, span_id, parent_span_id, project, source, service, name, op, transaction_name,"
                       " is_transaction, ts, duration_us, status, is_error, environment, release, correlation_id, attributes)"
                       " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        db.execute("COMMIT")
        spans += len(rows)
    elapsed = time.perf_counter() - start
    db.close()
    shutil.rmtree(directory)
    return spans / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gatehouse", required=True)
    parser.add_argument("--database-url")
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--per-transaction", type=int, default=10)
    parser.add_argument("--per-envelope", type=int, default=50)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--json")
    args = parser.parse_args()

    rng = random.Random(13)
    count = args.spans // args.per_transaction
    now = time.time()
    print(f"preparing {count:,} transactions of {args.per_transaction} spans…", file=sys.stderr)
    transactions = [transaction(i, count, now, args.per_transaction, rng) for i in range(count)]
    bodies = [envelope(transactions[o:o + args.per_envelope]) for o in range(0, count, args.per_envelope)]
    total = count * args.per_transaction
    some_trace = transactions[count // 2]["contexts"]["trace"]["trace_id"]

    data_dir = tempfile.mkdtemp(prefix="gh-bench-spans-")
    port = free_port()
    command = [args.gatehouse, "serve", "--port", str(port), "--data-dir", data_dir, "--log-format", "json", "--log-level", "warning"]
    if args.database_url:
        command += ["--database-url", args.database_url]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result = {"store": "postgres" if args.database_url else "sqlite", "spans": total, "per_transaction": args.per_transaction,
              "per_envelope": args.per_envelope, "connections": args.connections}
    schema = []
    try:
        wait_ready(port, proc)
        start = time.perf_counter()
        ingest(port, bodies, args.connections)
        accepted_at = time.perf_counter() - start
        deadline = time.time() + 600
        while (stored := stored_rows(port, "spans")) < total:
            if time.time() > deadline:
                raise SystemExit(f"only {stored:,} of {total:,} spans were stored")
            time.sleep(0.05)
        stored_at = time.perf_counter() - start
        result.update({"accept_seconds": round(accepted_at, 2), "store_seconds": round(stored_at, 2), "spans_per_second": round(total / stored_at)})
        print(f"ingest: {total:,} spans stored in {stored_at:.2f}s = {total / stored_at:,.0f} spans/s", file=sys.stderr)
        result["transactions_2h"] = timed(port, "/api/v1/transactions?from=-2h")
        result["transactions_10m"] = timed(port, "/api/v1/transactions?from=-10m")
        result["trace_tree"] = timed(port, f"/api/v1/traces/{some_trace}")
        stage = urllib.parse.quote("is_transaction:true | p95(duration) by transaction")
        result["p95_by_transaction_stage_2h"] = timed(port, f"/api/v1/spans?from=-2h&q={stage}")
        for name in ["transactions_2h", "transactions_10m", "trace_tree", "p95_by_transaction_stage_2h"]:
            print(f"{name}: {result[name]}", file=sys.stderr)
        if not args.database_url:
            schema = schema_of(data_dir)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(data_dir, ignore_errors=True)
    if schema:
        baseline = sqlite_baseline(bodies, schema)
        result["baseline_python_sqlite3_spans_per_second"] = round(baseline)
        result["ratio_to_baseline"] = round(result["spans_per_second"] / baseline, 2)
        print(f"baseline (python sqlite3, same rows and schema): {baseline:,.0f} spans/s; gatehouse/baseline = {result['ratio_to_baseline']}",
              file=sys.stderr)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
