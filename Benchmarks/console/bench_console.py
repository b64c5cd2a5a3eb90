#!/usr/bin/env python3
"""Console page-render benchmark (standard library only).

    bench_console.py --gatehouse .build/release/gatehouse [--rows 1000000] [--log-lines 1000000]
                     [--issues 200] [--error-events 50000] [--runs 20] [--warmups 3]
                     [--json out.json] [--keep-db DIR [--reuse]]

1. Starts `gatehouse serve` once on a fresh SQLite file in a temp dir (its config file names the
   file), so the server migrates the schema, and stops it.
2. Seeds that file directly with Python's sqlite3, writing rows as the stores write them: AI
   request records over the last 30 days, log lines, issues and their Sentry events, probe
   results, alert history, silences, deliveries, keys, switches, budget events and audit entries.
   No ANALYZE is run: the server never runs one, so the planner sees what it sees in production.
   The seed is read back through the JSON API (`/api/v1/requests`, `/logs`, `/issues`, …).
3. Starts the server again with an admin token, signs in to the console with it, and times every
   console page with the URLs a person opens: `--warmups` requests, then `--runs` timed ones, each
   response read whole. `GET /health` is timed the same way as the floor. Any status but 200 is a
   failure, reported in the table.
4. Stops the server and removes the temp dir (unless `--keep-db DIR`, which keeps it there;
   `--reuse` then skips steps 1 and 2 when DIR already holds a seed, for iterating: the data ages).

Issue 11's target: every page under 150 ms with 1,000,000 request records and 1,000,000 log lines.
"""
import argparse
import bisect
import hashlib
import html
import http.client
import itertools
import json
import math
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import datetime, timezone

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
SPAN_DAYS = 30
TARGET_MS = 150.0
DB_NAME = "gatehouse.sqlite"
SEED_INFO = "seed.json"
StatusCacheSeconds = 30.2  # StatusPage.maxAgeMicros (30 s) and a little


def log(message):
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Reference data: what a small AI product's traffic looks like.

# provider, requested model, served model, input $/M, output $/M, cached input $/M, cache write $/M,
# share of calls, median latency (ms), median output tokens, kind
MODELS = [
    ("openai", "openai/gpt-4o", "gpt-4o-2024-08-06", 2.5, 10.0, 1.25, 0.0, 18, 1800, 300, "chat"),
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", 0.15, 0.6, 0.075, 0.0, 30, 900, 250, "chat"),
    ("openai", "o3-mini", "o3-mini-2025-01-31", 1.1, 4.4, 0.55, 0.0, 5, 6000, 700, "reasoning"),
    ("openai", "text-embedding-3-small", "text-embedding-3-small", 0.02, 0.0, 0.0, 0.0, 12, 120, 0, "embedding"),
    ("anthropic", "anthropic/claude-sonnet-4-5", "claude-sonnet-4-5-20250929", 3.0, 15.0, 0.3, 3.75, 15, 2500, 400, "chat"),
    ("anthropic", "fast", "claude-haiku-4-5-20251001", 1.0, 5.0, 0.1, 1.25, 10, 900, 250, "chat"),
    ("google", "google/gemini-2.0-flash", "gemini-2.0-flash", 0.1, 0.4, 0.025, 0.0, 7, 700, 250, "chat"),
    ("google", "google/gemini-1.5-pro", "gemini-1.5-pro-002", 1.25, 5.0, 0.3125, 0.0, 3, 2500, 350, "chat"),
]
MODEL_CUM = list(itertools.accumulate(m[7] for m in MODELS))

# error class, status, share of failures, refused by Gatehouse itself, message
ERRORS = [
    ("upstream_429", 429, 30, False, "Rate limit reached for requests per min. Please try again in 20s."),
    ("upstream_5xx", 502, 12, False, "upstream answered 502 Bad Gateway"),
    ("upstream_5xx", 500, 8, False, "The server had an error while processing your request."),
    ("upstream_timeout", 504, 8, False, "no response from the provider within 600 s"),
    ("stream_incomplete", 200, 10, False, "the provider closed the stream before its final event"),
    ("client_disconnected", 499, 7, False, "the client closed the connection before the answer was complete"),
    ("rate_limited", 429, 10, True, "rate limit prod-requests: 600 requests per minute"),
    ("invalid_request", 400, 8, True, "model `gpt-5-turbo` is not known; see /v1/models"),
    ("unauthorized", 401, 4, True, "invalid or missing Gatehouse key"),
    ("budget_exceeded", 429, 3, True, "budget per-customer (customer=globex) is exhausted for this month"),
]
ERROR_CUM = list(itertools.accumulate(e[2] for e in ERRORS))

CUSTOMERS = ["acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka", "tyrell", "cyberdyne", "soylent", "massive"]
FEATURES = ["chat", "search", "summarize", "classify", "extract", "autocomplete", "translate", "agent"]
USERS = [f"user_{i:02d}" for i in range(1, 26)]
KEY_ALIASES = ["prod-web", "prod-worker", "prod-mobile", "staging", "batch-embeddings", "support-bot", "search-api", "agent-runner",
               "analytics", "eval-harness", "notebook-alice", "notebook-bob", "partner-acme", "partner-globex", "ci", None]

# Log sources: service, project, functions (an "AI" function's requests go through the gateway).
SERVICES = [
    ("api", "web", ["tasks.list", "tasks.create", "tasks.update", "users.get", "search.query", "billing.charge"], 55),
    ("worker", "worker", ["jobs.send_email", "jobs.cleanup", "jobs.import_csv", "jobs.reindex"], 25),
    ("web", "web", ["ssr.render", "ssr.dashboard", "ssr.settings"], 15),
    ("scheduler", "worker", ["cron.nightly_backup", "cron.usage_rollup", "cron.expire_sessions"], 5),
]
SERVICE_CUM = list(itertools.accumulate(s[3] for s in SERVICES))
AI_FUNCTIONS = [("api", "web", "chat.reply"), ("api", "web", "search.rerank"), ("worker", "worker", "jobs.summarize"),
                ("worker", "worker", "jobs.embed_documents")]
PATHS = {"tasks.list": "/api/tasks", "tasks.create": "/api/tasks", "tasks.update": "/api/tasks/:id", "users.get": "/api/users/:id",
         "search.query": "/api/search", "billing.charge": "/api/billing/charge", "chat.reply": "/api/chat", "search.rerank": "/api/search",
         "ssr.render": "/", "ssr.dashboard": "/dashboard", "ssr.settings": "/settings"}
DEBUG_MESSAGES = ["cache miss", "cache hit", "loaded user from session", "query plan chosen", "feature flag evaluated"]
WARN_MESSAGES = ["Slow query detected", "retrying after a transient error", "deprecated API version used", "payload larger than expected"]
ERROR_MESSAGES = ["unhandled exception while handling request", "payment declined by processor", "connection reset by peer",
                  "validation failed: missing field title", "database deadlock detected; transaction rolled back"]

# Exceptions for issues: type, values, module and function of the innermost in-app frame, platform.
EXCEPTIONS = [
    ("KeyError", ["'customer_id'", "'title'", "'workspace'", "'plan'"], "python"),
    ("ValueError", ["invalid literal for int() with base ten: 'abc'", "too many values to unpack", "time data does not match format"], "python"),
    ("TypeError", ["'NoneType' object is not subscriptable", "unsupported operand type(s) for +: 'int' and 'str'",
                   "Cannot read properties of undefined (reading 'id')", "Cannot read properties of null (reading 'map')"], "mixed"),
    ("AttributeError", ["'NoneType' object has no attribute 'email'", "'dict' object has no attribute 'items_count'"], "python"),
    ("TimeoutError", ["timed out waiting for the model", "read operation timed out"], "python"),
    ("ConnectionError", ["connection refused by the search cluster", "connection reset by peer"], "python"),
    ("IntegrityError", ["duplicate key value violates unique constraint", "null value in column owner violates not-null constraint"], "python"),
    ("openai.RateLimitError", ["Rate limit reached for requests", "You exceeded your current quota"], "python"),
    ("anthropic.APIStatusError", ["Overloaded", "prompt is too long"], "python"),
    ("httpx.ReadTimeout", ["The read operation timed out"], "python"),
    ("JSONDecodeError", ["Expecting value", "Unterminated string starting at"], "python"),
    ("PermissionError", ["the workspace owner revoked access", "token lacks the write scope"], "python"),
    ("RangeError", ["Maximum call stack size exceeded", "Invalid time value"], "javascript"),
    ("SyntaxError", ["Unexpected token in JSON", "Unexpected end of JSON input"], "javascript"),
    ("Error", ["Network request failed", "ResizeObserver loop limit exceeded", "Hydration failed because the initial UI does not match"], "javascript"),
]
MODULES = [("app.tasks.views", "create_task"), ("app.tasks.views", "update_task"), ("app.billing.charge", "charge_card"),
           ("app.search.query", "run_query"), ("app.ai.chat", "reply"), ("app.ai.summarize", "summarize_document"),
           ("app.users.profile", "load_profile"), ("app.jobs.importer", "import_rows"), ("app.jobs.mailer", "send_email"),
           ("app.api.middleware", "authenticate"), ("components/TaskList", "render"), ("pages/dashboard", "getServerSideProps")]
BROWSERS = ["Chrome", "Firefox", "Safari", "Edge"]
OSES = ["Windows", "macOS", "Linux", "iOS", "Android"]
SERVERS = ["web-1", "web-2", "web-3", "worker-1", "worker-2"]


# ---------------------------------------------------------------------------------------------
# Fingerprints, as Sources/GatehouseTelemetry/Fingerprint.swift computes them (for the values
# used here, which carry no numbers, URLs or ids, `parameterize` changes nothing).

def issue_id(project, components):
    return hashlib.sha256((project + "\n" + "\n".join(components)).encode()).hexdigest()[:32]


def hour_weights(start_us, hours):
    """Traffic by hour: a daily cycle, quieter weekends, growing a little over the month."""
    weights = []
    for h in range(hours):
        t = datetime.fromtimestamp((start_us + h * HOUR_US) / 1e6, tz=timezone.utc)
        daily = 1.0 + 0.65 * math.sin(2 * math.pi * (t.hour - 9) / 24)
        weekly = 0.6 if t.weekday() >= 5 else 1.0
        growth = 0.8 + 0.4 * h / hours
        weights.append(max(0.05, daily) * weekly * growth)
    return weights


def allocate(total, weights):
    """`total` split in proportion to `weights`, in whole numbers that sum to `total`."""
    s = sum(weights)
    raw = [total * w / s for w in weights]
    counts = [int(r) for r in raw]
    rest = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in rest[: total - sum(counts)]:
        counts[i] += 1
    return counts


def pick(rng, cumulative, items):
    return items[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]


def zipf_cum(n, s):
    return list(itertools.accumulate(1.0 / (i + 1) ** s for i in range(n)))


def hex_id(rng, bits=128):
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# The seed.

class Seeder:
    def __init__(self, db_path, rows, log_lines, issues, error_events, seed=11):
        self.db_path = db_path
        self.rows, self.log_lines, self.issue_count, self.error_events = rows, log_lines, issues, error_events
        self.rng = random.Random(seed)
        self.now = int(time.time() * 1e6)
        self.start = self.now - SPAN_DAYS * DAY_US
        self.info = {"now_us": self.now}

    def run(self):
        db = sqlite3.connect(self.db_path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("PRAGMA cache_size=-262144")
        missing = {"requests", "logs", "issues", "error_events", "virtual_keys", "probe_results"} - {
            r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if missing:
            raise SystemExit(f"the database has no {sorted(missing)} tables: did the server migrate it?")
        if db.execute("SELECT COUNT(*) FROM requests").fetchone()[0]:
            raise SystemExit("the database already holds requests; seed an empty one")
        self.tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        started = time.perf_counter()
        db.execute("BEGIN")
        self.seed_keys(db)
        self.seed_switches(db)
        db.execute("COMMIT")
        self.define_issues()
        self.seed_traffic(db)
        db.execute("BEGIN")
        self.write_issues(db)
        self.seed_probes(db)
        self.seed_alerts(db)
        self.seed_budgets(db)
        self.seed_audit(db)
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.info["seed_seconds"] = round(time.perf_counter() - started, 1)
        self.info["row_counts"] = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in sorted(self.tables)
                                   if not t.startswith("sqlite_") and t != "gatehouse_migrations"}
        db.close()
        self.info["db_bytes"] = os.path.getsize(self.db_path)
        return self.info

    # --- keys and switches -------------------------------------------------------------------

    def seed_keys(self, db):
        rng = self.rng
        alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        self.keys = []
        rows = []
        for i in range(50):
            secret = "gh-" + "".join(rng.choice(alphabet) for _ in range(40))
            key_id = "key_" + base36(rng.getrandbits(64))
            created = self.start - rng.randrange(0, 90) * DAY_US - rng.randrange(DAY_US)
            alias = KEY_ALIASES[i] if i < len(KEY_ALIASES) else (f"team-{CUSTOMERS[i % len(CUSTOMERS)]}-{FEATURES[i % len(FEATURES)]}" if i % 3 else None)
            doc = {"allowedModels": [], "allowedRoutes": [], "blocked": i == 17, "createdAtMicros": created, "hash": hashlib.sha256(secret.encode()).hexdigest(),
                   "id": key_id, "limits": [], "metadata": {}, "prefix": secret[:7], "tags": [], "updatedAtMicros": created}
            if alias:
                doc["alias"] = alias
            if i % 4 == 0:
                doc["limits"] = [{"limit": 600, "period": "minute", "unit": "requests"}, {"limit": 2_000_000, "period": "day", "unit": "tokens"}]
            if i % 5 == 1:
                doc["budget"] = {"limit": (50 + 25 * (i % 7)) * 1_000_000, "period": "month", "softThresholds": [0.5, 0.8, 1.0]}
            if i % 6 == 2:
                doc["allowedModels"] = ["gpt-4o-mini", "openai/gpt-4o*", "fast"]
            if i % 7 == 3:
                doc["metadata"] = {"owner": f"{CUSTOMERS[i % len(CUSTOMERS)]}@example.com", "team": FEATURES[i % len(FEATURES)]}
                doc["tags"] = ["prod"] if i % 2 else ["internal", "eval"]
            if i % 9 == 4:
                doc["maxParallel"] = 8
            if i in (40, 41):
                doc["revokedAtMicros"] = self.now - (i - 38) * 3 * DAY_US
                doc["updatedAtMicros"] = doc["revokedAtMicros"]
            if i == 42:
                doc["expiresAtMicros"] = self.now - 2 * DAY_US
            rows.append((key_id, doc["hash"], json.dumps(doc, sort_keys=True, separators=(",", ":")), doc["updatedAtMicros"]))
            self.keys.append((key_id, alias, created, doc))
        db.executemany("INSERT INTO virtual_keys (id, hash, document, updated_at) VALUES (?,?,?,?)", rows)
        db.execute("INSERT INTO control_versions (name, version) VALUES ('keys', 73) ON CONFLICT (name) DO UPDATE SET version = excluded.version")
        # Busiest first: a few keys carry most calls.
        self.key_cum = zipf_cum(len(self.keys), 1.0)
        self.info["busiest_key"] = self.keys[0][0]

    def seed_switches(self, db):
        switches = [("model", "gemini-1.5-pro-002", "quality regression on long prompts, see INC-ticket", None),
                    ("key", self.keys[17][0], "leaked in a public notebook", None),
                    ("property", "customer=soylent", "unpaid invoice", None)]
        rows = []
        for n, (kind, value, reason, retry) in enumerate(switches):
            created = self.now - (n + 1) * 2 * DAY_US
            doc = {"createdAtMicros": created, "kind": kind, "reason": reason, "value": value}
            rows.append((kind, value, json.dumps(doc, sort_keys=True, separators=(",", ":")), created))
        db.executemany("INSERT INTO kill_switches (kind, value, document, updated_at) VALUES (?,?,?,?)", rows)
        db.execute("INSERT INTO control_versions (name, version) VALUES ('switches', 9) ON CONFLICT (name) DO UPDATE SET version = excluded.version")

    # --- issues ------------------------------------------------------------------------------

    def define_issues(self):
        rng = self.rng
        combos = []
        for type_, values, plat in EXCEPTIONS:
            for value in values:
                for module, function in MODULES:
                    combos.append((type_, value, plat, module, function))
        rng.shuffle(combos)
        self.issues = []
        seen = set()
        for type_, value, plat, module, function in combos:
            if len(self.issues) >= self.issue_count:
                break
            project = "worker" if module.startswith("app.jobs") else "web"
            # Explicit fingerprints split one exception by where it happened, as apps often do.
            components = [type_, value, module]
            iid = issue_id(project, components)
            if iid in seen:
                continue
            seen.add(iid)
            index = len(self.issues)
            # The busiest issues are old; the rest started at some point in the month.
            first = self.start if index < 20 else self.start + rng.randrange(SPAN_DAYS * DAY_US - HOUR_US)
            platform_ = "javascript" if (plat == "javascript" or module[0].islower() and "/" in module) else "python"
            level = "fatal" if index % 37 == 5 else ("warning" if index % 23 == 7 else "error")
            self.issues.append({"id": iid, "project": project, "type": type_, "value": value, "module": module, "function": function,
                                "platform": platform_, "level": level, "first_allowed": first, "fingerprint": components,
                                "count": 0, "first": None, "last": None, "release": None, "users": set()})
        self.issue_cum = zipf_cum(len(self.issues), 1.1)

    def event_document(self, issue, event_id, ts, cid, user, release, rng):
        frames = []
        depth = 6 + rng.randrange(5)
        for d in range(depth):
            in_app = d >= depth - 3
            if in_app:
                module = issue["module"] if d == depth - 1 else MODULES[(d * 7) % len(MODULES)][0]
                function = issue["function"] if d == depth - 1 else MODULES[(d * 7) % len(MODULES)][1]
            else:
                module = ["django.core.handlers.base", "starlette.routing", "sqlalchemy.engine.base", "httpx._client", "asyncio.events"][d % 5]
                function = ["_get_response", "handle", "_execute_context", "send", "_run"][d % 5]
            filename = module.replace(".", "/") + (".py" if issue["platform"] == "python" else ".tsx")
            frame = {"filename": filename, "module": module, "function": function, "lineno": 40 + (d * 37) % 400, "in_app": in_app,
                     "abs_path": "/srv/app/" + filename}
            if in_app:
                frame["context_line"] = "    result = handler(request, **kwargs)" if d < depth - 1 else "    value = payload[field]"
                frame["pre_context"] = ["", "def " + function + "(request, payload):", "    field = request.args.get('field')"]
                frame["post_context"] = ["    return value", ""]
                if d == depth - 1:
                    frame["vars"] = {"field": "'customer_id'", "payload": "{'title': 'Quarterly report'}", "request": "<Request 'POST /api/tasks'>"}
            frames.append(frame)
        customer = CUSTOMERS[rng.randrange(len(CUSTOMERS))]
        doc = {
            "event_id": event_id, "timestamp": ts / 1e6, "platform": issue["platform"], "level": issue["level"], "logger": "app",
            "transaction": PATHS.get(issue["function"], "/api/" + issue["function"]), "server_name": SERVERS[rng.randrange(len(SERVERS))],
            "release": release, "environment": "production",
            "tags": {"browser": BROWSERS[rng.randrange(len(BROWSERS))], "os": OSES[rng.randrange(len(OSES))], "customer": customer,
                     "correlation_id": cid, "handled": "no" if issue["level"] == "fatal" else "yes"},
            "user": {"id": user, "ip_address": f"203.0.113.{rng.randrange(1, 255)}"},
            "exception": {"values": [{"type": issue["type"], "value": issue["value"], "module": issue["module"],
                                      "mechanism": {"type": "generic", "handled": issue["level"] != "fatal"},
                                      "stacktrace": {"frames": frames}}]},
            "breadcrumbs": {"values": [
                {"timestamp": ts / 1e6 - 2.5, "category": "http", "level": "info", "data": {"method": "GET", "url": "/api/session", "status_code": 200}},
                {"timestamp": ts / 1e6 - 1.2, "category": "query", "level": "info", "message": "SELECT * FROM tasks WHERE owner = %s"},
                {"timestamp": ts / 1e6 - 0.4, "category": "ai", "level": "info", "message": "POST /v1/chat/completions", "data": {"model": "gpt-4o-mini"}},
            ]},
            "contexts": {"runtime": {"name": "CPython", "version": "3.12.7"} if issue["platform"] == "python" else {"name": "node", "version": "v22.11.0"},
                         "trace": {"trace_id": cid, "span_id": hex_id(rng, 64), "op": "http.server"},
                         "os": {"name": "Linux", "version": "6.8.0"}},
            "request": {"url": "https://app.example.com" + PATHS.get(issue["function"], "/api/tasks"), "method": "POST",
                        "headers": {"User-Agent": "Mozilla/5.0", "Content-Type": "application/json", "X-Request-Id": cid}},
            "fingerprint": issue["fingerprint"],
            "sdk": {"name": "sentry.python" if issue["platform"] == "python" else "sentry.javascript.nextjs",
                    "version": "2.19.2" if issue["platform"] == "python" else "8.42.0"},
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))

    def write_issues(self, db):
        rng = self.rng
        rows = []
        for n, issue in enumerate(self.issues):
            if issue["count"] == 0:
                continue
            status = "unresolved"
            regressed = 0
            if n % 7 == 3:
                status = "resolved"
            elif n % 11 == 5:
                status = "ignored"
            elif n % 29 == 4:
                regressed = 1
            severity = {"fatal": 6, "warning": 4, "error": 5}[issue["level"]]
            title = f"{issue['type']}: {issue['value']}"
            culprit = f"{issue['module']} in {issue['function']}"
            rows.append((issue["id"], issue["project"], title, issue["type"], culprit, severity, status, regressed,
                         issue["first"], issue["last"], issue["count"], issue["release"]))
        db.executemany("""INSERT INTO issues (id, project, title, type, culprit, severity, status, regressed, first_seen, last_seen, event_count, last_release)
                          VALUES (?,?,?,?,?,?,?,?,?,?,?,?)""", rows)
        busiest = max(self.issues, key=lambda i: i["count"])
        ordered = sorted((i for i in self.issues if i["count"]), key=lambda i: i["count"])
        typical = ordered[len(ordered) // 2]
        self.info["busiest_issue"] = {"id": busiest["id"], "events": busiest["count"]}
        self.info["typical_issue"] = {"id": typical["id"], "events": typical["count"]}
        self.info["issues"] = len(rows)

    # --- requests, logs and error events, hour by hour, in time order ------------------------

    def seed_traffic(self, db):
        rng = self.rng
        hours = SPAN_DAYS * 24
        weights = hour_weights(self.start, hours)
        request_counts = allocate(self.rows, weights)
        log_counts = allocate(self.log_lines, weights)
        event_counts = allocate(self.error_events, weights)
        # About a fifth of log lines belong to app requests that called the gateway (4 lines each).
        link_share = min(0.5, 0.2 * self.log_lines / max(1, 4 * self.rows))
        request_sql = ("INSERT INTO requests (id, ts, route, provider, requested_model, model, status, stream, latency_us, ttft_us, input_tokens, "
                       "output_tokens, cached_input_tokens, cache_creation_input_tokens, reasoning_tokens, cost_micros, key_id, user_id, properties, "
                       "correlation_id, error_class, error_message, complete, attempts, cache_hit, cost_saved_micros, usage_estimated) "
                       "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
        log_sql = ("INSERT INTO logs (ts, project, severity, message, service, environment, correlation_id, function, duration_us, slow, attributes) "
                   "VALUES (?,?,?,?,?,?,?,?,?,?,?)")
        event_sql = ("INSERT INTO error_events (event_id, project, issue_id, ts, severity, type, value, title, culprit, release, environment, "
                     "correlation_id, user_key, document) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
        started = time.perf_counter()
        self.correlated = None
        db.execute("BEGIN")
        for h in range(hours):
            hour_start = self.start + h * HOUR_US
            hour_end = min(self.now, hour_start + HOUR_US)
            release = f"web@1.{40 + h // 72}.0"
            stamps = sorted(rng.randrange(hour_start, hour_end) for _ in range(request_counts[h]))
            requests, linked = self.hour_requests(stamps, link_share)
            db.executemany(request_sql, requests)
            events = self.hour_events(event_counts[h], hour_start, hour_end, linked, release)
            lines = self.hour_logs(log_counts[h], hour_start, hour_end, linked, events)
            lines.sort(key=lambda line: line[0])
            db.executemany(log_sql, lines)
            db.executemany(event_sql, [e[0] for e in events])
            if h % 24 == 23:
                db.execute("COMMIT")
                db.execute("BEGIN")
                done = (h + 1) / hours
                log(f"  seeded day {(h + 1) // 24}/{SPAN_DAYS} ({done:.0%}, {time.perf_counter() - started:.0f}s)")
        db.execute("COMMIT")

    def hour_requests(self, stamps, link_share):
        rng = self.rng
        rows = []
        linked = []
        keys = self.keys
        for ts in stamps:
            provider, requested, model, p_in, p_out, p_cached, p_write, _, median_ms, median_out, kind = pick(rng, MODEL_CUM, MODELS)
            if kind == "embedding":
                route = "/v1/embeddings"
            elif provider == "anthropic":
                route = "/v1/messages" if rng.random() < 0.8 else "/v1/chat/completions"
            else:
                route = "/v1/responses" if rng.random() < 0.12 else "/v1/chat/completions"
            stream = kind != "embedding" and rng.random() < 0.45
            r = rng.random()
            key_id = None if r < 0.04 else keys[bisect.bisect_right(self.key_cum, rng.random() * self.key_cum[-1])][0]
            user_id = USERS[int(len(USERS) * rng.random() ** 2)] if rng.random() < 0.4 else None
            props = {}
            if rng.random() < 0.9:
                props["customer"] = CUSTOMERS[int(len(CUSTOMERS) * rng.random() ** 1.6)]
            if rng.random() < 0.8:
                props["feature"] = FEATURES[int(len(FEATURES) * rng.random() ** 1.4)]
            if rng.random() < 0.3:
                props["environment"] = "prod" if rng.random() < 0.9 else "staging"
            properties = json.dumps(props, sort_keys=True, separators=(",", ":")) if props else "{}"
            cid = hex_id(rng)
            input_tokens = int(rng.lognormvariate(math.log(900 if kind != "embedding" else 300), 1.0)) + 5
            output_tokens = 0 if kind == "embedding" else int(rng.lognormvariate(math.log(median_out), 0.8)) + 1
            reasoning = int(output_tokens * rng.uniform(0.3, 0.7)) if kind == "reasoning" else 0
            cached = int(input_tokens * rng.uniform(0.3, 0.9)) if kind != "embedding" and rng.random() < 0.25 else 0
            cache_write = int(input_tokens * 0.5) if p_write and cached == 0 and rng.random() < 0.05 else 0
            latency_ms = rng.lognormvariate(math.log(median_ms), 0.7)
            if rng.random() < 0.003:
                latency_ms = rng.uniform(30_000, 120_000)
            error_class = error_message = attempts = None
            status, complete, estimated, cache_hit, saved = 200, 1, 0, 0, 0
            cost = round((input_tokens - cached - cache_write) * p_in + cached * p_cached + cache_write * p_write + output_tokens * p_out)
            if rng.random() < 0.03:
                error_class, status, _, refused, error_message = pick(rng, ERROR_CUM, ERRORS)
                if error_class == "stream_incomplete" and not stream:
                    error_class, status, refused, error_message = ERRORS[1][0], ERRORS[1][1], False, ERRORS[1][4]
                if refused:
                    latency_ms = rng.uniform(0.3, 4.0)
                    input_tokens = output_tokens = cached = cache_write = reasoning = cost = 0
                elif error_class in ("stream_incomplete", "client_disconnected"):
                    complete = 0
                    output_tokens = output_tokens // 3
                    estimated = 1 if error_class == "client_disconnected" else 0
                    cost = round((input_tokens - cached - cache_write) * p_in + cached * p_cached + cache_write * p_write + output_tokens * p_out)
                else:
                    output_tokens = reasoning = cached = cache_write = cost = 0
                    input_tokens = 0
                    latency_ms = latency_ms if error_class == "upstream_timeout" else rng.uniform(80, 900)
                    if error_class == "upstream_timeout":
                        latency_ms = 600_000
            elif not stream and kind == "chat" and rng.random() < 0.03:
                cache_hit, saved, cost = 1, cost, 0
                latency_ms = rng.uniform(1.5, 12)
            elif rng.random() < 0.015:
                first = rng.choice([(429, "upstream_429", "Rate limit reached for requests"), (503, "upstream_5xx", "upstream answered 503 Service Unavailable")])
                delay = rng.choice([200, 400, 1000, 2000])
                attempts = compact([
                    {"provider": provider, "model": model, "status": first[0], "errorClass": first[1], "errorMessage": first[2],
                     "latencyMicros": int(rng.uniform(50, 600) * 1000), "delayMilliseconds": 0},
                    {"provider": provider, "model": model, "status": 200, "latencyMicros": int(latency_ms * 1000), "delayMilliseconds": delay},
                ])
                latency_ms += delay
            latency_us = int(latency_ms * 1000)
            if status == 200 and stream:
                ttft = int(latency_us * rng.uniform(0.08, 0.35))
            elif status == 200:
                ttft = int(latency_us * 0.97)
            else:
                ttft = None
            request_id = f"req_{ts // 1000:012x}{rng.getrandbits(64):016x}"
            rows.append((request_id, ts, route, "" if error_class in ("invalid_request", "unauthorized") else provider, requested,
                         model, status, 1 if stream else 0, latency_us, ttft, input_tokens, output_tokens, cached, cache_write, reasoning,
                         cost, key_id, user_id, properties, cid, error_class, error_message, complete, attempts, cache_hit, saved, estimated))
            if rng.random() < link_share:
                linked.append((ts, cid, request_id, model, provider, latency_us, error_class, output_tokens, cost))
        return rows, linked

    def hour_events(self, count, hour_start, hour_end, linked, release):
        rng = self.rng
        events = []
        failed = [l for l in linked if l[6] is not None]
        for _ in range(count):
            ts = rng.randrange(hour_start, hour_end)
            for _ in range(20):
                issue = self.issues[bisect.bisect_right(self.issue_cum, rng.random() * self.issue_cum[-1])]
                if issue["first_allowed"] <= ts:
                    break
            link = None
            if (failed or linked) and rng.random() < 0.25:
                link = rng.choice(failed) if failed and rng.random() < 0.6 else rng.choice(linked)
                ts = link[0] + link[5] + rng.randrange(1000, 50_000)
            cid = link[1] if link else hex_id(rng)
            user = USERS[int(len(USERS) * rng.random() ** 2)] if rng.random() < 0.85 else None
            event_id = hex_id(rng)
            document = self.event_document(issue, event_id, ts, cid, user, release, rng)
            severity = {"fatal": 6, "warning": 4, "error": 5}[issue["level"]]
            title = f"{issue['type']}: {issue['value']}"
            culprit = f"{issue['module']} in {issue['function']}"
            events.append(((event_id, issue["project"], issue["id"], ts, severity, issue["type"], issue["value"], title, culprit, release,
                            "production", cid, user, document), link, issue))
            issue["count"] += 1
            issue["first"] = ts if issue["first"] is None else min(issue["first"], ts)
            if issue["last"] is None or ts >= issue["last"]:
                issue["last"], issue["release"] = ts, release
            if link and self.correlated is None and link[6] is not None:
                self.correlated = link[1]
                self.info["correlation_id"] = link[1]
                self.info["correlated_request"] = link[2]
        return events

    def hour_logs(self, count, hour_start, hour_end, linked, events):
        rng = self.rng
        lines = []
        # Lines of app requests that called the gateway, under the call's correlation id.
        for ts, cid, request_id, model, provider, latency_us, error_class, output_tokens, cost in linked:
            if len(lines) >= count:
                break
            service, project, function = AI_FUNCTIONS[rng.randrange(len(AI_FUNCTIONS))]
            t = ts - rng.randrange(2000, 80_000)
            lines.append(self.line(t, project, 3, "request started", service, cid, function, None, {"http": {"method": "POST", "path": PATHS.get(function, "/jobs")}}))
            lines.append(self.line(ts, project, 2, "calling model", service, cid, function, None, {"model": model, "provider": provider, "gatewayRequestId": request_id}))
            end = ts + latency_us
            if error_class:
                lines.append(self.line(end + 500, project, 5, f"model call failed: {error_class}", service, cid, function, None,
                                       {"model": model, "errorClass": error_class, "gatewayRequestId": request_id}))
            else:
                lines.append(self.line(end + 500, project, 3, "model replied", service, cid, function, None,
                                       {"model": model, "outputTokens": output_tokens, "costUsd": round(cost / 1e6, 6)}))
            status = 502 if error_class else 200
            lines.append(self.line(end + rng.randrange(1000, 20_000), project, 5 if error_class else 3, "handled request", service, cid, function,
                                   (end - t) / 1000, {"http": {"method": "POST", "status": status}, "dbCalls": rng.randrange(1, 8), "userId": USERS[rng.randrange(len(USERS))]}))
        # An error event usually has its own log line.
        for (row, link, issue) in events:
            if len(lines) >= count:
                break
            service = "worker" if issue["project"] == "worker" else "api"
            lines.append(self.line(row[3] - 200, issue["project"], 5, f"{row[7]}", service, row[11], issue["function"], None,
                                   {"exception": issue["type"], "eventId": row[0]}))
        # Everything else: app requests and jobs with their own ids, and background lines without one.
        while len(lines) < count:
            service, project, functions, _ = pick(rng, SERVICE_CUM, SERVICES)
            function = functions[rng.randrange(len(functions))]
            t = rng.randrange(hour_start, hour_end)
            if rng.random() < 0.08:
                lines.append(self.line(t, project, 3 if rng.random() < 0.9 else 2, rng.choice(["heartbeat ok", "cache stats", "pool size adjusted", "config reloaded"]),
                                       service, None, None, None, {"pool": {"active": rng.randrange(1, 30), "idle": rng.randrange(0, 10)}, "host": SERVERS[rng.randrange(len(SERVERS))]}))
                continue
            cid = hex_id(rng)
            n = 1 + int(rng.random() ** 2 * 7)
            step = rng.randrange(200, 30_000)
            failed = rng.random() < 0.04
            for i in range(n):
                if len(lines) >= count:
                    break
                at = t + i * step
                if i == n - 1:
                    duration_ms = round(rng.lognormvariate(math.log(45), 0.9), 2)
                    db_calls = int(rng.lognormvariate(math.log(3), 0.8))
                    docs = int(rng.lognormvariate(math.log(200), 1.5))
                    attributes = {"http": {"method": rng.choice(["GET", "GET", "GET", "POST", "PATCH"]), "status": 500 if failed else 200,
                                           "path": PATHS.get(function, "/jobs/" + function)},
                                  "dbCalls": db_calls, "docsScanned": docs, "userId": USERS[rng.randrange(len(USERS))], "region": "eu-west-1"}
                    lines.append(self.line(at, project, 5 if failed else 3, "handled request" if service in ("api", "web") else "job finished",
                                           service, cid, function, duration_ms, attributes))
                elif i == 0:
                    lines.append(self.line(at, project, 3, "request started" if service in ("api", "web") else "job started", service, cid, function, None,
                                           {"http": {"method": "GET", "path": PATHS.get(function, "/jobs/" + function)}} if service in ("api", "web") else {"queue": "default", "attempt": 1}))
                else:
                    r = rng.random()
                    if r < 0.6:
                        lines.append(self.line(at, project, 2, DEBUG_MESSAGES[rng.randrange(len(DEBUG_MESSAGES))], service, cid, function, None,
                                               {"table": rng.choice(["tasks", "users", "invoices"]), "rows": rng.randrange(0, 500)}))
                    elif r < 0.75:
                        lines.append(self.line(at, project, 1, "sql", service, cid, function, None, {"statement": "SELECT id, title FROM tasks WHERE owner_id = $1 LIMIT 50"}))
                    elif r < 0.93:
                        lines.append(self.line(at, project, 4, WARN_MESSAGES[rng.randrange(len(WARN_MESSAGES))], service, cid, function,
                                               round(rng.uniform(100, 2500), 1), {"dbCalls": rng.randrange(5, 40)}))
                    else:
                        lines.append(self.line(at, project, 6 if rng.random() < 0.03 else 5, ERROR_MESSAGES[rng.randrange(len(ERROR_MESSAGES))], service, cid,
                                               function, None, {"error": {"kind": "Error", "retryable": rng.random() < 0.5}}))
        del lines[count:]
        return lines

    def line(self, ts, project, severity, message, service, cid, function, duration_ms, attributes):
        duration_us = None if duration_ms is None else int(duration_ms * 1000)
        slow = 1 if (duration_ms is not None and duration_ms > 100) or attributes.get("dbCalls", 0) > 10 or attributes.get("docsScanned", 0) > 10_000 else 0
        return (ts, project, severity, message, service, "production", cid, function, duration_us, slow, compact(attributes))

    # --- probes, alerts, budgets, audit ------------------------------------------------------

    def seed_probes(self, db):
        rng = self.rng
        rows = []
        for name, interval, error in [("gateway-health", 60, "HTTP 503"), ("api-ready", 30, "timed out after 5000 ms"), ("docs-site", 60, "connection refused")]:
            t = self.start
            down_until = 0
            while t < self.now - interval * 1_000_000:
                if down_until <= t and rng.random() < 1 / 6000:
                    down_until = t + rng.randrange(2, 40) * interval * 1_000_000
                up = t >= down_until
                latency = int(rng.lognormvariate(math.log(35_000), 0.5)) if up else 5_000_000 if "timed out" in error else rng.randrange(500, 3000)
                rows.append((name, t + rng.randrange(0, 200_000), 1 if up else 0, (200 if up else (503 if error.startswith("HTTP") else None)), latency,
                             None if up else error))
                t += interval * 1_000_000
        db.executemany("INSERT INTO probe_results (probe, ts, up, status, latency_us, error) VALUES (?,?,?,?,?,?)", rows)
        db.execute("INSERT INTO heartbeats (name, last_ping) VALUES ('nightly-backup', ?)", (self.now - 5 * HOUR_US,))
        self.info["probe_results"] = len(rows)

    def seed_alerts(self, db):
        rng = self.rng
        rules = [("AIErrorRateHigh", "high", "More than 1% of AI calls failed in the last 5 minutes", {}),
                 ("AILatencyP95High", "medium", "P95 latency above 500 ms", {"model": "gpt-4o-2024-08-06"}),
                 ("DailySpendHigh", "high", "Spend over the last day above $400", {}),
                 ("ErrorBurst", "high", "More than 10 errors in 5 minutes", {}),
                 ("EndpointDown", "critical", "A probe or heartbeat is down", {"probe": "docs-site"}),
                 ("APIErrorLogs", "high", "More than 10 error log lines from the API in 5 minutes", {})]
        history, deliveries = [], []
        for _ in range(140):
            name, severity, summary, extra = rules[rng.randrange(len(rules))]
            labels = {"alertname": name, "severity": severity, **extra}
            fingerprint = hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
            t = rng.randrange(self.start, self.now - HOUR_US)
            value = round(rng.uniform(1, 50), 3)
            fired = t + rng.randrange(60, 900) * 1_000_000
            resolved = fired + rng.randrange(120, 7200) * 1_000_000
            label_text = json.dumps(labels, sort_keys=True, separators=(",", ":"))
            history += [(t, name, fingerprint, label_text, "pending", value, severity, summary),
                        (fired, name, fingerprint, label_text, "firing", value, severity, summary),
                        (resolved, name, fingerprint, label_text, "resolved", 0.0, severity, summary)]
            group = "{}:{alertname=\"" + name + "\"}"
            for status, at in (("firing", fired + 30_000_000), ("resolved", resolved + 30_000_000)):
                receiver = "pagerduty" if severity == "critical" else "slack-ops"
                ok = rng.random() < 0.93
                deliveries.append((at, receiver, group, status, 1, "delivered" if ok else "retrying", "HTTP 200" if ok else "HTTP 502 from hooks.slack.com"))
                if not ok:
                    deliveries.append((at + 1_000_000, receiver, group, status, 2, "delivered", "HTTP 200"))
        history.sort()
        db.executemany("INSERT INTO alert_history (ts, rule, fingerprint, labels, state, value, severity, summary) VALUES (?,?,?,?,?,?,?,?)", history)
        deliveries.sort()
        db.executemany("INSERT INTO alert_deliveries (ts, receiver, group_key, status, attempt, outcome, detail) VALUES (?,?,?,?,?,?,?)", deliveries)
        silences = [(hex_id(rng), json.dumps(["alertname=AILatencyP95High", "model=gemini-1.5-pro-002"]), self.now - DAY_US, self.now + 2 * DAY_US,
                     "console:admin-token", "known slow model, switched off"),
                    (hex_id(rng), json.dumps(["alertname=EndpointDown", "probe=docs-site"]), self.now - 3 * HOUR_US, self.now + 21 * HOUR_US,
                     "console:admin-token", "docs site migration"),
                    (hex_id(rng), json.dumps(["severity=low"]), self.now - 10 * DAY_US, self.now - 9 * DAY_US, "admin-token:3f9c1a7e@10.0.0.5", "noisy"),
                    (hex_id(rng), json.dumps(["alertname=DailySpendHigh"]), self.now - 20 * DAY_US, self.now - 19 * DAY_US, "console:admin-token", "launch day")]
        db.executemany("INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment) VALUES (?,?,?,?,?,?)", silences)
        self.info["alert_history"] = len(history)
        self.info["alert_deliveries"] = len(deliveries)

    def seed_budgets(self, db):
        now = datetime.fromtimestamp(self.now / 1e6, tz=timezone.utc)
        month_start = int(datetime(now.year, now.month, 1, tzinfo=timezone.utc).timestamp() * 1e6)
        spent = db.execute("SELECT COALESCE(SUM(cost_micros), 0) FROM requests WHERE ts >= ?", (month_start,)).fetchone()[0]
        rows = [("budget:all-ai", month_start, spent, spent, 20_000_000_000, self.now)]
        for customer, used in db.execute("""SELECT json_extract(properties, '$."customer"'), SUM(cost_micros) FROM requests
                                            WHERE ts >= ? AND json_extract(properties, '$."customer"') IS NOT NULL GROUP BY 1""", (month_start,)).fetchall():
            rows.append((f"budget:per-customer|{customer}", month_start, used, used, 2_500_000_000, self.now))
        db.executemany("INSERT INTO quota_counters (counter, window_start, granted, used, limit_value, updated_at) VALUES (?,?,?,?,?,?)", rows)
        events = []
        previous_month = int(datetime(now.year - (now.month == 1), (now.month - 2) % 12 + 1, 1, tzinfo=timezone.utc).timestamp() * 1e6)
        for counter, window, limit in [("budget:all-ai", previous_month, 20_000_000_000), ("budget:per-customer|acme", previous_month, 2_500_000_000),
                                       ("budget:per-customer|acme", month_start, 2_500_000_000), ("budget:per-customer|globex", month_start, 2_500_000_000)]:
            for n, threshold in enumerate([50, 80, 100]):
                at = max(window, self.now - SPAN_DAYS * DAY_US) + (n + 1) * 4 * DAY_US
                if at < self.now:
                    events.append((counter, window, threshold, limit * threshold // 100, limit, at))
        db.executemany("INSERT INTO budget_events (counter, window_start, threshold_percent, used, limit_value, ts) VALUES (?,?,?,?,?,?)", events)

    def seed_audit(self, db):
        rng = self.rng
        rows = []
        actors = ["console:admin-token", "console:ops@example.com", "admin-token:3f9c1a7e5b2d4c6a@10.0.0.5", "console:alice@example.com"]
        for key_id, alias, created, doc in self.keys:
            rows.append((created, actors[rng.randrange(len(actors))], "key.create", key_id,
                         compact({"alias": alias, "models": doc["allowedModels"], "limits": len(doc["limits"])})))
        for _ in range(550):
            t = rng.randrange(self.start, self.now)
            action = rng.choice(["key.update", "key.update", "key.rotate", "switch.set", "switch.remove", "issue.status", "silence.create", "silence.expire"])
            if action.startswith("key"):
                target, details = self.keys[rng.randrange(len(self.keys))][0], compact({"changed": ["limits"], "limits": [{"requests": 600, "per": "minute"}]})
            elif action.startswith("switch"):
                target, details = "model=gemini-1.5-pro-002", compact({"kind": "model", "value": "gemini-1.5-pro-002", "reason": "quality regression"})
            elif action == "issue.status":
                target, details = self.issues[rng.randrange(len(self.issues))]["id"], compact({"from": "unresolved", "status": "resolved"})
            else:
                target, details = hex_id(rng), compact({"matchers": ["alertname=AILatencyP95High"], "comment": "known"})
            rows.append((t, actors[rng.randrange(len(actors))], action, target, details))
        rows.sort()
        db.executemany("INSERT INTO audit_log (ts, actor, action, target, details) VALUES (?,?,?,?,?)", rows)


def base36(n):
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


# ---------------------------------------------------------------------------------------------
# The server.

def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write_config(path, db_path, port, admin_token):
    """The configuration of a small production install: telemetry projects, budgets, alert rules and probes."""
    text = f"""
host: 127.0.0.1
port: {port}
database_url: sqlite://{db_path}
admin_token: {admin_token}
log_format: json
log_level: warning
providers:
  - {{name: openai, kind: openai}}
  - {{name: anthropic, kind: anthropic}}
  - {{name: google, kind: openai-compatible, base_url: "https://generativelanguage.googleapis.com/v1beta/openai", price_provider: google}}
aliases: {{fast: anthropic/claude-haiku-4-5}}
telemetry:
  projects:
    - {{name: web, id: "42", key: 3f9c1a7e5b2d4c6a8e0f1b3d5c7a9e2f}}
    - {{name: worker, id: "43", key: 9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d}}
budgets:
  - {{name: all-ai, scope: global, amount_usd: "20000", period: month}}
  - {{name: per-customer, scope: property.customer, amount_usd: "2500", period: month}}
alerts:
  rules:
    - {{name: AIErrorRateHigh, expr: "error_rate over 5m > 1%", for: 5m, severity: high, summary: More than 1% of AI calls failed in the last 5 minutes}}
    - {{name: AILatencyP95High, expr: "latency_p95 over 10m by model > 500ms", for: 10m, severity: medium}}
    - {{name: DailySpendHigh, expr: "spend over 1d > $400", severity: high}}
    - {{name: ErrorBurst, expr: "errors over 5m > 10", severity: high}}
    - {{name: EndpointDown, expr: "probe_down by probe > 0", for: 1m, severity: critical}}
    - {{name: APIErrorLogs, expr: "count(level:error service:api) over 5m > 10", severity: high}}
  probes:
    - {{name: gateway-health, url: "http://127.0.0.1:{port}/health", interval_seconds: 60, public: true}}
    - {{name: api-ready, url: "http://127.0.0.1:{port}/ready", interval_seconds: 30, public: true}}
    - {{name: docs-site, url: "http://127.0.0.1:9/", interval_seconds: 60, timeout_ms: 2000}}
  heartbeats:
    - {{name: nightly-backup, interval_seconds: 86400, grace_seconds: 3600, token: bench-heartbeat-token-0123456789}}
"""
    with open(path, "w") as f:
        f.write(text.lstrip())


class Server:
    def __init__(self, binary, config, port, log_path):
        self.port = port
        self.log_file = open(log_path, "ab")
        self.proc = subprocess.Popen([binary, "serve", "--config", config], stdout=self.log_file, stderr=self.log_file)
        self.log_path = log_path

    def wait_ready(self, seconds=300):
        deadline = time.time() + seconds
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gatehouse exited early ({self.proc.returncode}); its log:\n" + tail(self.log_path))
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/ready")
                response = conn.getresponse()
                response.read()
                conn.close()
                if response.status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("gatehouse did not become ready; its log:\n" + tail(self.log_path))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


def tail(path, lines=30):
    try:
        with open(path, "rb") as f:
            return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
    except OSError:
        return ""


class Client:
    """One keep-alive connection, as a browser tab has; cookies kept by name."""

    def __init__(self, port):
        self.port = port
        self.origin = f"http://127.0.0.1:{port}"
        self.cookies = {}
        self.conn = None

    def request(self, method, path, body=None, headers=None, bearer=None):
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if bearer:
            h["Authorization"] = "Bearer " + bearer
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
            try:
                self.conn.request(method, path, body=body, headers=h)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        return response.status, response.headers, data

    def sign_in(self, admin_token):
        status, _, page = self.request("GET", "/login")
        if status != 200:
            raise SystemExit(f"GET /login answered {status}")
        match = re.search(rb'name="_csrf" value="([^"]+)"', page)
        if not match:
            raise SystemExit("the sign-in form has no _csrf field")
        form = urllib.parse.urlencode({"email": "", "password": admin_token, "_csrf": html.unescape(match.group(1).decode()), "next": "/"})
        status, headers, body = self.request("POST", "/login", form.encode(), {
            "Content-Type": "application/x-www-form-urlencoded", "Origin": self.origin, "Referer": self.origin + "/login"})
        if status not in (302, 303) or "gatehouse-session" not in self.cookies:
            raise SystemExit(f"sign-in failed: {status} {body[:300]!r}")


# ---------------------------------------------------------------------------------------------
# Checks and timings.

def verify_seed(client, admin_token, info):
    """The seed must read back through the API the way the server's own writes do."""
    def get(path):
        status, _, data = client.request("GET", path, bearer=admin_token)
        if status != 200:
            raise SystemExit(f"seed check: {path} answered {status}: {data[:300]!r}")
        return json.loads(data)

    requests = get("/api/v1/requests?limit=5")["data"]
    if len(requests) != 5 or not all(r.get("model") and r.get("id", "").startswith("req_") for r in requests):
        raise SystemExit(f"seed check: /api/v1/requests reads back wrong: {requests[:1]}")
    one = get("/api/v1/requests/" + info["correlated_request"])
    logs = get("/api/v1/logs?limit=5")
    lines = logs.get("data") or logs.get("lines") or []
    if len(lines) != 5:
        raise SystemExit(f"seed check: /api/v1/logs reads back wrong: {str(logs)[:300]}")
    issues = get("/api/v1/issues?limit=5")["data"]
    if not issues:
        raise SystemExit("seed check: /api/v1/issues is empty")
    issue = get("/api/v1/issues/" + info["busiest_issue"]["id"])
    timeline = get("/api/v1/correlation/" + info["correlation_id"])
    kinds = {e.get("kind") or e.get("type") for e in timeline.get("timeline", [])}
    keys = get("/api/v1/keys")
    storage = {k["kind"]: k["rows"] for k in get("/api/v1/storage")["kinds"]}
    expected = info["row_counts"]
    for kind, table in (("requests", "requests"), ("logs", "logs"), ("errors", "error_events")):
        # Retention may already have pruned the oldest minutes of a 30-day window.
        if not expected[table] * 0.99 <= storage.get(kind, 0) <= expected[table]:
            raise SystemExit(f"seed check: the server counts {storage.get(kind)} {kind}, the seed wrote {expected[table]}")
    log(f"seed check: requests {requests[0]['model']} {requests[0]['id']}; one request {one.get('id')}; logs {len(lines)}; "
        f"issues {len(issues)} (busiest: {issue.get('title', issue.get('data', {}).get('title', '?'))!s:.60}); "
        f"correlation timeline {len(timeline.get('timeline', []))} entries {sorted(k for k in kinds if k)}; "
        f"keys {len(keys.get('data', keys) if isinstance(keys, dict) else keys)}; storage {storage}")


def percentile(sorted_values, p):
    return sorted_values[max(0, math.ceil(p * len(sorted_values)) - 1)]


def time_page(client, name, path, runs, warmups, pause=0.0):
    samples, statuses, sizes = [], set(), []
    for i in range(warmups + runs):
        time.sleep(pause)
        started = time.perf_counter()
        status, headers, data = client.request("GET", path)
        elapsed = (time.perf_counter() - started) * 1000
        statuses.add(status)
        if i >= warmups:
            samples.append(elapsed)
            sizes.append(len(data))
    samples.sort()
    result = {"name": name, "path": path, "status": sorted(statuses), "bytes": int(statistics.median(sizes)),
              "median_ms": round(statistics.median(samples), 2), "p95_ms": round(percentile(samples, 0.95), 2),
              "max_ms": round(samples[-1], 2), "min_ms": round(samples[0], 2), "runs": runs, "ok": statuses == {200}}
    if name.startswith("export"):
        result["rows"] = max(0, data.count(b"\r\n") - 1)
    return result, data


def first_link(page, pattern):
    match = re.search(pattern, page)
    return html.unescape(match.group(1).decode()) if match else None


def pages(client, info):
    """The console's pages with the URLs a person opens (Sources/GatehouseConsole/Pages)."""
    q = urllib.parse.quote
    _, _, first = client.request("GET", "/requests")
    second = first_link(first, rb'href="([^"]+)" rel="next"')
    request_link = first_link(first, rb'href="(/requests/req_[0-9a-f]+)"')
    urls = [
        ("health (floor)", "/health"),
        ("overview", "/"),
        ("overview 7d", "/?range=7d"),
        ("overview 30d", "/?range=30d"),
        ("requests", "/requests"),
        ("requests filtered", "/requests?q=" + q("model:gpt-4o* cost:>0.01")),
        ("requests by cost", "/requests?sort=-cost"),
        ("requests by latency", "/requests?sort=-latency"),
        ("requests 7d", "/requests?range=7d"),
        ("requests 30d", "/requests?range=30d"),
        ("requests 30d by cost", "/requests?range=30d&sort=-cost"),
        ("requests page 2", second),
        ("request detail", request_link),
        ("export csv 24h", "/requests/export.csv?range=24h"),
        ("spend by model", "/spend"),
        ("spend by key", "/spend?group=key"),
        ("spend by property", "/spend?group=property&property=customer"),
        ("spend 30d", "/spend?range=30d"),
        ("logs", "/logs"),
        ("logs level:error", "/logs?q=" + q("level:error")),
        ("logs 30d", "/logs?range=30d"),
        ("correlation", "/correlation/" + info["correlation_id"]),
        ("issues", "/issues"),
        ("issues 30d", "/issues?range=30d"),
        ("issue (busiest)", "/issues/" + info["busiest_issue"]["id"]),
        ("issue (typical)", "/issues/" + info["typical_issue"]["id"]),
        ("alerts", "/alerts"),
        ("uptime", "/uptime"),
        ("uptime 30d", "/uptime?range=30d"),
        ("status (public)", "/status"),
        # The public page keeps its answer 30 s (StatusPage.cache): this one waits that out each time.
        ("status uncached", "/status?uncached"),
        ("keys", "/keys"),
        ("key detail", "/keys/" + info["busiest_key"]),
        ("switches", "/switches"),
        ("audit", "/audit"),
        ("accounts", "/accounts"),
        ("settings", "/settings"),
    ]
    missing = [name for name, url in urls if not url]
    if missing:
        raise SystemExit(f"could not find links for {missing} on /requests")
    return urls


def machine_facts(binary):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = None
    try:
        with open("/proc/meminfo") as f:
            memory = int(f.readline().split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    path = os.path.realpath(binary)
    return {"nproc": os.cpu_count(), "cpu_model": cpu, "memory_bytes": memory, "kernel": platform.release(), "python": platform.python_version(),
            "python_sqlite": sqlite3.sqlite_version, "binary": path, "binary_mtime": datetime.fromtimestamp(os.path.getmtime(path), tz=timezone.utc).isoformat(),
            "build": "debug" if "/debug/" in path else ("release" if "/release/" in path else "unknown")}


def print_table(results, floor):
    header = f"{'page':<22} {'status':>6} {'bytes':>10} {'median ms':>10} {'p95 ms':>9} {'max ms':>9} {'x health':>9}  url"
    print(header)
    print("-" * len(header))
    for r in results:
        ratio = r["median_ms"] / floor if floor else float("nan")
        flag = " " if r["median_ms"] <= TARGET_MS else "!"
        status = ",".join(str(s) for s in r["status"])
        print(f"{r['name']:<22} {status:>6} {r['bytes']:>10} {r['median_ms']:>10.1f} {r['p95_ms']:>9.1f} {r['max_ms']:>9.1f} {ratio:>8.0f}x{flag} {r['path'][:90]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gatehouse", required=True, help="the gatehouse binary")
    parser.add_argument("--rows", type=int, default=1_000_000, help="AI request records")
    parser.add_argument("--log-lines", type=int, default=1_000_000)
    parser.add_argument("--issues", type=int, default=200)
    parser.add_argument("--error-events", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=20, help="timed requests per page")
    parser.add_argument("--warmups", type=int, default=3)
    parser.add_argument("--json", help="write every figure and the machine's facts here")
    parser.add_argument("--keep-db", metavar="DIR", help="work in DIR and keep it (database, config, server log, seed.json)")
    parser.add_argument("--reuse", action="store_true", help="with --keep-db: reuse the seed already in DIR")
    args = parser.parse_args()
    if args.reuse and not args.keep_db:
        parser.error("--reuse needs --keep-db DIR")
    distinct = sum(len(values) for _, values, _ in EXCEPTIONS) * len(MODULES)
    if not 1 <= args.issues <= distinct:
        parser.error(f"--issues: 1 to {distinct} (the distinct exceptions defined here)")

    binary = os.path.abspath(args.gatehouse)
    if args.keep_db:
        work = os.path.abspath(args.keep_db)
        os.makedirs(work, exist_ok=True)
    else:
        work = tempfile.mkdtemp(prefix="gh-bench-console-")
    db_path = os.path.join(work, DB_NAME)
    config = os.path.join(work, "gatehouse.yaml")
    server_log = os.path.join(work, "server.log")
    admin_token = "bench-admin-" + hex_id(random.Random(), 128)
    server = None
    result = {"target_ms": TARGET_MS, "machine": machine_facts(binary)}
    try:
        info_path = os.path.join(work, SEED_INFO)
        if args.reuse and os.path.exists(info_path) and os.path.exists(db_path):
            with open(info_path) as f:
                info = json.load(f)
            log(f"reusing the seed in {work} (seeded {(time.time() * 1e6 - info['now_us']) / 3.6e9:.1f} h ago)")
        else:
            for leftover in (db_path, db_path + "-wal", db_path + "-shm", info_path):
                if os.path.exists(leftover):
                    os.remove(leftover)
            port = free_port()
            write_config(config, db_path, port, admin_token)
            log(f"migrating {db_path} …")
            server = Server(binary, config, port, server_log)
            server.wait_ready()
            server.stop()
            server = None
            log(f"seeding {args.rows:,} requests, {args.log_lines:,} log lines, {args.issues} issues with {args.error_events:,} events …")
            info = Seeder(db_path, args.rows, args.log_lines, args.issues, args.error_events).run()
            with open(info_path, "w") as f:
                json.dump(info, f, indent=2)
            log(f"seeded in {info['seed_seconds']} s; database {info['db_bytes'] / 2**20:.0f} MiB; rows {info['row_counts']}")
        result["seed"] = info

        port = free_port()
        write_config(config, db_path, port, admin_token)
        server = Server(binary, config, port, server_log)
        started = time.perf_counter()
        server.wait_ready()
        result["startup_seconds"] = round(time.perf_counter() - started, 2)
        client = Client(port)
        verify_seed(client, admin_token, info)
        client.sign_in(admin_token)
        urls = pages(client, info)
        results = []
        for name, path in urls:
            if name == "status uncached":
                r, body = time_page(client, name, "/status", min(args.runs, 5), 0, pause=StatusCacheSeconds)
                r["path"] = f"/status (each request {StatusCacheSeconds} s after the last, past its 30 s cache)"
            else:
                r, body = time_page(client, name, path, args.runs, args.warmups)
            results.append(r)
            if not r["ok"]:
                log(f"FAILED {name}: {r['status']} {body[:200]!r}")
            log(f"  {name:<22} median {r['median_ms']:>9.1f} ms  p95 {r['p95_ms']:>9.1f} ms  ({r['status']})")
        floor = results[0]["median_ms"]
        for r in results:
            r["ratio_to_health"] = round(r["median_ms"] / floor, 1) if floor else None
        result["pages"] = results
        result["over_target"] = [r["name"] for r in results if r["median_ms"] > TARGET_MS]
        result["failures"] = [{"name": r["name"], "status": r["status"]} for r in results if not r["ok"]]
        print(f"\nconsole pages, {result['machine']['build']} build {binary}; {info['row_counts']['requests']:,} requests, "
              f"{info['row_counts']['logs']:,} log lines, {info['row_counts']['error_events']:,} error events; "
              f"{args.warmups} warm-ups + {args.runs} timed requests each; ! = median over {TARGET_MS:.0f} ms\n")
        print_table(results, floor)
        print(f"\n{len(result['over_target'])} of {len(results)} pages over {TARGET_MS:.0f} ms; failures: {result['failures'] or 'none'}")
    finally:
        if server is not None:
            server.stop()
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
        if not args.keep_db:
            shutil.rmtree(work, ignore_errors=True)
    if result.get("failures"):
        sys.exit(1)


if __name__ == "__main__":
    main()
