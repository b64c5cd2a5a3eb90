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


def main():
    parser = argparse.ArgumentParser()
    for name in ("base-url", "token", "viewer-email", "viewer-password", "ingest-key", "screenshots"):
        parser.add_argument("--" + name, required=True)
    args = parser.parse_args()
    os.makedirs(args.screenshots, exist_ok=True)
    chromium = os.environ.get("GATEHOUSE_TEST_CHROMIUM") or "/usr/bin/chromium"

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
                           ("/logs?range=24h", "logs"), ("/issues", "issues"), ("/alerts", "alerts"), ("/uptime?range=1h", "uptime"),
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
