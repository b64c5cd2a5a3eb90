"""A local stand-in for Slack, PagerDuty, a webhook receiver and an app's health endpoint.

    receiver.py --port 0 --port-file PATH

POST any path: recorded (path, headers, JSON body) and answered 200 {"ok": true}, unless a
failure is queued for that path. Control and inspection:

    POST   /__control  {"fail": {"/slack": 2}}   the next 2 POSTs to /slack answer 500
                       {"health": 503}           GET /health answers 503 {"status": "down"} from now on
    GET    /__received[?path=/slack]             what was received, oldest first
    DELETE /__received                           forget it
    GET    /health                               200 {"status": "ok"} (or as set)
"""
import argparse
import json
import os
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

lock = threading.Lock()
received = []
failures = {}
health = {"status": 200}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/__received":
            want = parse_qs(url.query).get("path", [None])[0]
            with lock:
                items = [r for r in received if want is None or r["path"] == want]
            return self.reply(200, items)
        if url.path == "/health":
            status = health["status"]
            return self.reply(status, {"status": "ok" if status == 200 else "down"})
        self.reply(404, {"error": "not found"})

    def do_DELETE(self):
        if urlparse(self.path).path == "/__received":
            with lock:
                received.clear()
            return self.reply(200, {"ok": True})
        self.reply(404, {"error": "not found"})

    def do_POST(self):
        path = urlparse(self.path).path
        raw = self.body()
        if path == "/__control":
            control = json.loads(raw or b"{}")
            with lock:
                failures.update(control.get("fail", {}))
                if "health" in control:
                    health["status"] = int(control["health"])
            return self.reply(200, {"ok": True})
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        with lock:
            failing = failures.get(path, 0) > 0
            if failing:
                failures[path] -= 1
            received.append({"at": time.time(), "path": path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": payload, "answered": 500 if failing else 200})
        if failing:
            return self.reply(500, {"error": "receiver is down"})
        self.reply(200 if path != "/pagerduty" else 202, {"ok": True} if path != "/pagerduty" else {"status": "success", "message": "Event processed"})


def exit_with_parent():
    """A test that never stops this process (a failed expectation, a run killed half-way) must not
    leave it running for good: it exits once the test process that started it is gone."""
    parent = os.getppid()

    def watch():
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def main():
    exit_with_parent()
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    args = parser.parse_args()
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    if args.port_file:
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(args.port_file)))
        with os.fdopen(fd, "w") as f:
            f.write(str(server.server_address[1]))
        os.rename(tmp, args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
