"""Drives the Gatehouse console in real headless Chromium, the way a person uses it.

    console_browser.py --base-url URL --token TOKEN --viewer-email E --viewer-password P \
                       --ingest-key KEY --screenshots DIR

Debian's chromium (GATEHOUSE_TEST_CHROMIUM or /usr/bin/chromium) through Playwright. Signs in
and out, visits every page (status 200, no console errors, a full-page screenshot each),
filters the request table and checks the URL and the rows, opens the shared URL in a second
browser, exports the filtered rows, tails logs while a line is sent, resolves an issue, previews
and saves a silence, creates a key and sees its secret once, checks that a viewer can change
nothing, that a form without its CSRF token is refused, and that the public status page shows
only public probes. Prints each failure and exits 1 when there is one.

    console_browser.py --performance --base-url URL --token TOKEN --ingest-key KEY --screenshots DIR

sends Sentry transactions itself and checks only the Performance page, a transaction's traces
and a trace's waterfall (see `performance`).
"""
import argparse
import json
import os
import re
import sys
import time
import urllib.request

from playwright.sync_api import sync_playwright

FAILURES = []


def check(condition, message):
    if not condition:
        FAILURES.append(message)
        print("FAIL:", message, flush=True)
    return condition


class Console:
    def __init__(self, browser, args, name):
        self.args = args
        self.name = name
        self.context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme="light")
        self.page = self.context.new_page()
        self.errors = []
        self.page.on("console", lambda m: self.errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        # Which URL a failed subresource was: the console message alone does not say.
        self.page.on("response", lambda r: self.errors.append(f"{r.status} from {r.url}")
                     if r.status >= 400 and r.request.resource_type not in ("document",) else None)
        self.shots = 0

    def url(self, path):
        return self.args.base_url + path

    def visit(self, path, shot=None, expect_status=200):
        before = len(self.errors)
        response = self.page.goto(self.url(path), wait_until="load")
        status = response.status if response else 0
        check(status == expect_status, f"{self.name}: GET {path} answered {status}, expected {expect_status}")
        check(len(self.errors) == before, f"{self.name}: console errors on {path}: {self.errors[before:]}")
        if shot:
            self.shot(shot)
        return status

    def shot(self, name):
        # From the top: sticky headers land mid-image in a full-page shot of a scrolled page.
        self.page.evaluate("window.scrollTo(0, 0)")
        Console.counter += 1
        self.page.screenshot(path=os.path.join(self.args.screenshots, f"{Console.counter:02d}-{name}.png"), full_page=True)

    def sign_in(self, email, password):
        self.page.goto(self.url("/login"))
        self.page.fill("#email", email)
        self.page.fill("#password", password)
        self.page.click("button[type=submit]")
        self.page.wait_for_load_state("load")


Console.counter = 0


def rows(page, selector="table tbody tr"):
    return page.locator(selector).count()


def post_log(args, message):
    body = json.dumps({"level": "error", "message": message, "service": "browser-test", "correlation_id": "corr-tail-1"}).encode() + b"\n"
    request = urllib.request.Request(args.base_url + "/api/v1/logs", data=body, method="POST",
                                     headers={"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {args.ingest_key}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status


def hex_id(length):
    return os.urandom(length // 2).hex()


def send_transaction(args, name, start, duration, spans, status="ok", environment="production", release="tasks@1.4.0"):
    """Posts one Sentry envelope with a `transaction` item, as an SDK does: the root in
    contexts.trace and `spans` given as (name, op, parent index or None for the root, offset s,
    duration s, status). Returns the trace id."""
    trace_id, root_id = hex_id(32), hex_id(16)
    ids = [hex_id(16) for _ in spans]
    items = [{
        "trace_id": trace_id, "span_id": ids[i], "parent_span_id": root_id if parent is None else ids[parent],
        "op": op, "description": description, "start_timestamp": start + offset, "timestamp": start + offset + length, "status": span_status,
    } for i, (description, op, parent, offset, length, span_status) in enumerate(spans)]
    event = {
        "type": "transaction", "event_id": hex_id(32), "transaction": name, "platform": "python",
        "start_timestamp": start, "timestamp": start + duration, "environment": environment, "release": release, "server_name": "api-1",
        "contexts": {"trace": {"trace_id": trace_id, "span_id": root_id, "op": "http.server", "status": status}},
        "tags": {"region": "eu-1"}, "spans": items, "sdk": {"name": "sentry.python", "version": "2.0.0"},
    }
    header = {"event_id": event["event_id"], "sent_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    body = "\n".join([json.dumps(header), json.dumps({"type": "transaction"}), json.dumps(event)]).encode() + b"\n"
    request = urllib.request.Request(args.base_url + "/api/42/envelope/", data=body, method="POST", headers={
        "Content-Type": "application/x-sentry-envelope", "X-Sentry-Auth": f"Sentry sentry_key={args.ingest_key}, sentry_version=7"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        check(answer.status == 200, f"the envelope of {name} answered {answer.status}")
    return trace_id


def api_get(args, path):
    request = urllib.request.Request(args.base_url + path, headers={"Authorization": f"Bearer {args.token}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def performance(args, browser):
    """The Performance page, one transaction's traces and a trace's waterfall, as a person
    reaches them: the table shows the transactions sent, a slower p95 than the hour before is
    marked, a row leads to its traces and a trace to its waterfall, whose bars sit where the
    spans ran, and the errors and correlation links lead on."""
    now = time.time()
    # The hour before: `GET /api/tasks` was fast. Now it is slow, with a slow query and a failed call.
    for i in range(3):
        send_transaction(args, "GET /api/tasks", now - 5400 + i * 60, 0.020, [("SELECT tasks", "db.query", None, 0.002, 0.010, "ok")])
    slow_tasks = [("SELECT tasks", "db.query", None, 0.005, 0.090, "ok"), ("fetch rows", "db.fetch", 0, 0.060, 0.030, "ok"),
                  ("GET https://auth.example/verify", "http.client", None, 0.100, 0.030, "internal_error"),
                  ("render tasks", "template.render", None, 0.132, 0.008, "ok")]
    tasks_trace = None
    for i in range(4):
        tasks_trace = send_transaction(args, "GET /api/tasks", now - 600 + i * 30, 0.140 + i * 0.001, slow_tasks,
                                       status="internal_error" if i == 3 else "ok")
    send_transaction(args, "POST /api/login", now - 300, 0.015, [("SELECT users", "db.query", None, 0.001, 0.004, "ok")],
                     environment="staging")
    deadline = time.time() + 20
    while time.time() < deadline:
        names = [row["name"] for row in api_get(args, "/api/v1/transactions?from=-1h")["data"]]
        if "GET /api/tasks" in names and "POST /api/login" in names and "POST /api/orders" in names:
            break
        time.sleep(0.3)
    check("GET /api/tasks" in names, f"the transactions were stored: {names}")

    admin = Console(browser, args, "admin")
    page = admin.page
    admin.sign_in("", args.token)

    def refused(path, status):
        answer = page.goto(admin.url(path), wait_until="load")
        check(answer and answer.status == status, f"GET {path} answered {answer.status if answer else 0}, expected {status}")
        # Chromium logs a 4xx document as a failed load: expected here, nothing else is.
        check(all("Failed to load resource" in e for e in admin.errors), f"console errors on {path}: {admin.errors}")
        admin.errors.clear()

    admin.visit("/performance?range=1h", shot="performance")
    check(page.locator("nav a", has_text="Performance").count() >= 1, "Performance is in the navigation")
    table = page.locator("table.transactions tbody tr")
    shown = [table.nth(i).locator("td").first.inner_text().strip() for i in range(table.count())]
    check({"GET /api/tasks", "POST /api/login", "POST /api/orders"} <= set(shown), f"the table lists the transactions sent: {shown}")
    tasks = page.locator("table.transactions tbody tr", has_text="GET /api/tasks")
    cells = [c.strip() for c in tasks.locator("td").all_inner_texts()]
    check(len(cells) == 8 and cells[1] == "4", f"GET /api/tasks ran 4 times in the last hour: {cells}")
    check(cells[3] == "25%", f"one of its 4 failed: {cells}")
    check(tasks.locator("td").last.locator(".pill.bad").count() == 1 and cells[7].startswith("+"),
          f"its p95 rose from ~20 ms to ~140 ms and is marked: {cells}")

    # A column's name sorts by it, keeping the range.
    page.locator("table.transactions th a", has_text="p95").first.click()
    page.wait_for_load_state("load")
    names = [n.strip() for n in page.locator("table.transactions tbody tr td:first-child").all_inner_texts()]
    check("sort=p95" in page.url and "range=1h" in page.url and names[0] == "GET /api/tasks", f"sorted by p95, slowest first: {page.url} {names}")

    # The environment filter and a query narrow the table; a bad query says what is wrong.
    page.fill("input[name=environment]", "staging")
    page.press("input[name=environment]", "Enter")
    page.wait_for_load_state("load")
    check("environment=staging" in page.url, f"the filter is in the URL: {page.url}")
    names = page.locator("table.transactions tbody tr td:first-child").all_inner_texts()
    check([n.strip() for n in names] == ["POST /api/login"], f"only staging's transaction is left: {names}")
    admin.visit("/performance?range=1h&q=op%3Ahttp.server+duration%3A%3E100ms")
    names = [n.strip() for n in page.locator("table.transactions tbody tr td:first-child").all_inner_texts()]
    check("GET /api/tasks" in names and "POST /api/login" not in names, f"the query runs over the root spans: {names}")
    refused("/performance?range=1h&q=%28op%3Ahttp.server", 400)
    check("The query did not run" in page.content(), "a bad query is explained")
    admin.visit("/performance?range=1h&environment=nowhere")
    check("No transaction matches these filters" in page.content(), "an empty filtered table says so")

    # A row leads to the transaction's traces, a trace to its waterfall.
    admin.visit("/performance?range=1h")
    page.locator("table.transactions a", has_text="GET /api/tasks").click()
    page.wait_for_load_state("load")
    check("transaction=GET" in page.url, f"the row opens its transaction: {page.url}")
    traces = page.locator("table.traces tbody tr")
    check(traces.count() == 4, f"its 4 traces of the last hour are listed: {traces.count()}")
    check(page.locator("table.traces svg.waterfall-bar rect").count() == traces.count(), "each trace has its duration bar")
    admin.shot("performance-transaction")
    page.locator(".tabs a", has_text="Slowest").click()
    page.wait_for_load_state("load")
    durations = page.locator("table.traces tbody tr td:nth-child(3)").all_inner_texts()
    check("order=slowest" in page.url and len(durations) == 4, f"the slowest tab lists them: {page.url} {durations}")
    page.locator("table.traces tbody tr a").first.click()
    page.wait_for_load_state("load")
    check("/traces/" in page.url, f"a trace opens its waterfall: {page.url}")
    rows_ = page.locator(".waterfall-row:not(.waterfall-head)")
    check(rows_.count() == 5, f"the waterfall shows the transaction and its 4 spans: {rows_.count()}")
    check(page.locator(".waterfall-name.depth-2", has_text="fetch rows").count() == 1, "the fetch is indented under its query")
    bars = page.locator(".waterfall-track svg rect")
    xs = [float(bars.nth(i).get_attribute("x")) for i in range(bars.count())]
    widths = [float(bars.nth(i).get_attribute("width")) for i in range(bars.count())]
    check(len(xs) == 5 and xs[0] == 0 and widths[0] > 990, f"the root bar spans the trace: {xs} {widths}")
    check(len(xs) == 5 and all(xs[i] < xs[i + 1] for i in range(4)), f"each later span's bar starts further right: {xs}")
    failed = page.locator(".waterfall-row", has_text="auth.example/verify")
    check(failed.locator("rect.span-error").count() == 1 and "internal_error" in failed.inner_text(), "the failed call is marked")
    check(page.locator(".waterfall-track rect.span-slow").count() >= 1, "spans over the slow threshold are marked")
    box = bars.nth(2).bounding_box()
    track = page.locator(".waterfall-track").nth(2).bounding_box()
    check(box and track and box["x"] > track["x"] + track["width"] * 0.3, f"the fetch's bar is drawn where it ran: {box} in {track}")
    admin.shot("trace")
    page.locator(".waterfall-name summary", has_text="SELECT tasks").click()
    opened = page.locator("details[open] dl.fields")
    check(opened.count() == 1 and "span id" in opened.inner_text() and "tasks@1.4.0" in opened.inner_text(), "opening a span shows its ids and release")
    correlation = page.locator("a.button", has_text="Logs, errors and AI calls")
    check(correlation.count() >= 1 and "/correlation/" in (correlation.first.get_attribute("href") or ""), "the trace links to its correlation page")
    if correlation.count():
        correlation.first.click()
        page.wait_for_load_state("load")
        back = page.locator("a.button[href^='/traces/']")
        check("/correlation/" in page.url and back.count() == 1, f"the correlation page of a trace with no logs shows its trace: {page.url}")
        admin.shot("correlation-of-trace")

    # The sentry-sdk trace with an error: the error links to its issue.
    orders = api_get(args, "/api/v1/spans?q=transaction%3A%22POST+%2Fapi%2Forders%22+is_transaction%3Atrue&limit=1")["data"][0]
    admin.visit("/traces/" + orders["trace_id"], shot="trace-with-error")
    error_link = page.locator("a[href^='/issues/']")
    check(error_link.count() >= 1 and "could not be charged" in page.content(), "the trace lists its error")
    if error_link.count():
        error_link.first.click()
        page.wait_for_load_state("load")
        check("/issues/" in page.url and "ValueError" in page.content(), f"the error opens its issue: {page.url}")

    # Ids that are not a trace: a page that says so, not a crash.
    refused("/traces/not-a-trace", 400)
    check("32 hex digits" in page.content(), "an id that is not a trace id says what one is")
    refused("/traces/" + "0" * 31 + "1", 404)
    check("No trace has the id" in page.content(), "an unknown trace says so")
    admin.visit(f"/traces/{tasks_trace}")
    check(not admin.errors, f"console errors: {admin.errors}")
    admin.context.close()

    # The waterfall in the dark theme, as the system asks.
    dark = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme="dark")
    dark_page = dark.new_page()
    dark_page.goto(args.base_url + "/login")
    dark_page.fill("#email", "")
    dark_page.fill("#password", args.token)
    dark_page.click("button[type=submit]")
    dark_page.wait_for_load_state("load")
    dark_page.goto(args.base_url + f"/traces/{tasks_trace}")
    Console.counter += 1
    dark_page.screenshot(path=os.path.join(args.screenshots, f"{Console.counter:02d}-trace-dark.png"), full_page=True)
    dark.close()


def main():
    parser = argparse.ArgumentParser()
    for name in ("base-url", "token", "ingest-key", "screenshots"):
        parser.add_argument("--" + name, required=True)
    parser.add_argument("--viewer-email")
    parser.add_argument("--viewer-password")
    parser.add_argument("--performance", action="store_true", help="only the Performance pages (sends its own transactions)")
    args = parser.parse_args()
    os.makedirs(args.screenshots, exist_ok=True)
    chromium = os.environ.get("GATEHOUSE_TEST_CHROMIUM") or "/usr/bin/chromium"

    if args.performance:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
            performance(args, browser)
            browser.close()
        print(json.dumps({"failures": FAILURES, "screenshots": Console.counter}))
        return 1 if FAILURES else 0

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
        admin = Console(browser, args, "admin")
        page = admin.page

        # Sign-in.
        admin.visit("/requests", expect_status=200)  # lands on the sign-in form after the redirect
        check("/login" in page.url, f"an anonymous visit should land on /login, not {page.url}")
        admin.shot("sign-in")
        admin.sign_in("", "not-the-token")
        check("Wrong email or password" in page.content(), "a wrong token is refused with a message")
        # That refusal is a 401 document, which Chromium logs as a failed load: expected here.
        admin.errors.clear()
        admin.sign_in("", args.token)
        check(page.url.rstrip("/").endswith(args.base_url.split("//")[1]) or page.url.endswith("/"), f"signed in, at {page.url}")
        check("admin-token" in page.content(), "the header names who is signed in")

        # Every page renders with the data, without console errors.
        for path, name in [("/?range=24h", "overview"), ("/requests?range=24h", "requests"), ("/spend?range=24h", "spend"),
                           ("/spend?range=24h&group=property&property=customer", "spend-by-customer"),
                           ("/logs?range=24h", "logs"), ("/issues", "issues"), ("/performance?range=24h", "performance-gateway-calls"), ("/alerts", "alerts"), ("/uptime?range=1h", "uptime"),
                           ("/keys", "keys"), ("/switches", "switches"), ("/audit", "audit"), ("/accounts", "accounts"),
                           ("/settings", "settings"), ("/correlation/corr-openai-chat", "correlation")]:
            admin.visit(path, shot=name)
        page.goto(admin.url("/?range=24h"))
        check(page.locator(".kpi .value").first.inner_text().strip() not in ("0", ""), "the overview counts the requests made")

        # A filter changes the URL and the rows; the shared URL shows the same view.
        page.goto(admin.url("/requests?range=24h"))
        everything = rows(page)
        check(everything >= 9, f"the request table shows the calls made ({everything})")
        page.fill("input[name=q]", "property.customer:globex")
        page.press("input[name=q]", "Enter")
        page.wait_for_load_state("load")
        check("q=property.customer" in page.url, f"the filter is in the URL: {page.url}")
        filtered = rows(page)
        check(0 < filtered < everything, f"the filter narrows the rows ({everything} → {filtered})")
        admin.shot("requests-filtered")
        shared_url = page.url
        other = Console(browser, args, "second browser")
        other.sign_in("", args.token)
        other.page.goto(shared_url)
        check(rows(other.page) == filtered, f"the shared URL shows the same rows ({rows(other.page)} vs {filtered})")
        other.context.close()

        # Export returns the filtered rows.
        export = page.request.get(admin.url("/requests/export.ndjson?range=24h&q=property.customer%3Aglobex"))
        lines = [l for l in export.text().splitlines() if l.strip().startswith("{")]
        check(export.status == 200 and len(lines) == filtered, f"NDJSON export: {export.status}, {len(lines)} rows for {filtered} shown")
        csv = page.request.get(admin.url("/requests/export.csv?range=24h&q=property.customer%3Aglobex"))
        check(csv.status == 200 and len(csv.text().strip().splitlines()) == filtered + 1, "CSV export: a header and the filtered rows")

        # A request's page, its kept bodies (the server captures them), and its correlation links.
        page.goto(admin.url("/requests?range=24h&q=status%3A200"))
        page.locator("table tbody tr a").first.click()
        page.wait_for_load_state("load")
        check("/requests/" in page.url, f"a row opens its request ({page.url})")
        check("Kept because body capture was on" in page.content(), "the request's page shows its kept bodies")
        admin.shot("request")

        # Live tail shows a line sent after it opened.
        page.goto(admin.url("/logs?range=24h"))
        page.click("#tail-toggle")
        page.wait_for_timeout(800)
        marker = f"tail-marker-{int(time.time() * 1000)}"
        check(post_log(args, marker) in (200, 202), "the log line was accepted")
        try:
            page.wait_for_selector(f"#log-lines >> text={marker}", timeout=15000)
        except Exception as error:  # noqa: BLE001 - reported as a failure
            check(False, f"live tail did not show the new line: {error}")
        admin.shot("logs-live-tail")
        page.click("#tail-toggle")

        # Resolve an issue.
        page.goto(admin.url("/issues"))
        page.locator("table tbody tr a").first.click()
        page.wait_for_load_state("load")
        admin.shot("issue")
        page.locator("button", has_text="Resolve").first.click()
        page.wait_for_load_state("load")
        check("resolved" in page.content(), "the issue reads resolved after Resolve")

        # A silence: preview shows what it would mute, saving mutes the firing alert.
        deadline = time.time() + 20
        while time.time() < deadline:
            page.goto(admin.url("/alerts"))
            if "firing" in page.content():
                break
            page.wait_for_timeout(1000)
        check("firing" in page.content(), "the AICallsFlowing alert fires")
        page.goto(admin.url("/alerts?silence=new#new-silence"))
        if page.locator("#silence-matchers").count() == 0:
            page.locator("a", has_text="silence").first.click()
            page.wait_for_load_state("load")
        page.fill("#silence-matchers", "alertname=AICallsFlowing")
        page.fill("#silence-duration", "1h")
        page.fill("#silence-comment", "browser test: planned maintenance")
        page.locator("button", has_text="Preview").click()
        page.wait_for_load_state("load")
        preview = page.locator("#silence-preview").inner_text() if page.locator("#silence-preview").count() else ""
        check("AICallsFlowing" in preview, f"the preview lists the alert it would mute: {preview[:300]!r}")
        admin.shot("silence-preview")
        page.locator("button", has_text="Save silence").click()
        page.wait_for_load_state("load")
        content = page.content()
        check("browser test: planned maintenance" in content, "the saved silence is listed")
        check("silenced" in content.lower(), "the alert shows as silenced")
        admin.shot("alerts-silenced")

        # Create a key: its secret is shown once.
        page.goto(admin.url("/keys/new"))
        page.fill("#key-alias", "browser-key")
        page.locator("button", has_text="Create key").click()
        page.wait_for_load_state("load")
        secret = page.locator("#key-secret").inner_text().strip() if page.locator("#key-secret").count() else ""
        check(len(secret) >= 20, f"the new key's secret is shown ({len(secret)} characters)")
        admin.shot("key-created")
        page.goto(admin.url("/keys"))
        check(secret and secret not in page.content(), "the secret is not shown again")
        check("browser-key" in page.content(), "the key is listed")

        # A form without its CSRF token is refused.
        refused = page.request.post(admin.url("/switches"), form={"kind": "model", "value": "gpt-4o", "reason": "csrf test"})
        check(refused.status == 403, f"a form without its CSRF token answers {refused.status}")
        page.goto(admin.url("/switches"))
        check("csrf test" not in page.content(), "the refused form changed nothing")

        # A viewer sees everything and changes nothing.
        viewer = Console(browser, args, "viewer")
        viewer.sign_in(args.viewer_email, args.viewer_password)
        check("viewer" in viewer.page.content(), "the viewer is signed in")
        for path in ("/keys", "/switches", "/alerts", "/accounts"):
            viewer.visit(path)
            check(viewer.page.locator("form[method=post]:not([action='/logout'])").count() == 0, f"a viewer sees no change forms on {path}")
        token = viewer.page.locator("input[name=_csrf]").first.get_attribute("value")
        attempt = viewer.page.request.post(admin.url("/switches"), form={"_csrf": token, "kind": "model", "value": "gpt-4o", "reason": "viewer"})
        check(attempt.status == 403, f"a viewer's change answers {attempt.status}")
        viewer.shot("viewer-keys") if viewer.page.goto(admin.url("/keys")) else None
        viewer.context.close()

        # The public status page: no sign-in, only public probes.
        public = browser.new_context(viewport={"width": 1280, "height": 800})
        status_page = public.new_page()
        answer = status_page.goto(admin.url("/status"))
        check(answer.status == 200, f"/status answers {answer.status}")
        text = status_page.content()
        check("website" in text and "internal-db" not in text and "nightly-backup" not in text, "only public probes are on /status")
        Console.counter += 1
        status_page.screenshot(path=os.path.join(args.screenshots, f"{Console.counter:02d}-status.png"), full_page=True)
        public.close()

        # Dark theme, as the system asks.
        dark = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme="dark")
        dark_page = dark.new_page()
        dark_page.goto(admin.url("/login"))
        dark_page.fill("#email", "")
        dark_page.fill("#password", args.token)
        dark_page.click("button[type=submit]")
        dark_page.wait_for_load_state("load")
        Console.counter += 1
        dark_page.screenshot(path=os.path.join(args.screenshots, f"{Console.counter:02d}-overview-dark.png"), full_page=True)
        dark.close()

        # Sign out.
        page.goto(admin.url("/"))
        page.locator("button", has_text="Sign out").click()
        page.wait_for_load_state("load")
        check("/login" in page.url, f"signed out, at {page.url}")
        page.goto(admin.url("/"))
        check("/login" in page.url, "after sign-out the console asks for a sign-in again")
        check(not admin.errors, f"console errors: {admin.errors}")
        browser.close()

    print(json.dumps({"failures": FAILURES, "screenshots": Console.counter}))
    return 1 if FAILURES else 0


if __name__ == "__main__":
    sys.exit(main())
