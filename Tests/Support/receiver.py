"""A local stand-in for Slack, PagerDuty, a webhook receiver and an app's health endpoint.

    receiver.py --port 0 --port-file PATH

POST any path: recorded (path, headers, JSON body) and answered 200 {"ok": true}, unless a
failure is queued for that path. Control and inspection:

    POST   /__control  {"fail": {"/slack": 2}}   the next 2 POSTs to /slack answer 500
                       {"fail_status": 503}      failures answer 503 instead
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
failure_status = {"status": 500}
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
                if "fail_status" in control:
                    failure_status["status"] = int(control["fail_status"])
                if "health" in control:
                    health["status"] = int(control["health"])
            return self.reply(200, {"ok": True})
        if "protobuf" in (self.headers.get("Content-Type") or "") and path.endswith("/v1/traces"):
            payload = otlp_traces(raw)
        else:
            try:
                payload = json.loads(raw) if raw else None
            except ValueError:
                payload = raw.decode(errors="replace")
        with lock:
            failing = failures.get(path, 0) > 0
            if failing:
                failures[path] -= 1
            status = failure_status["status"]
            received.append({"at": time.time(), "path": path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": payload, "answered": status if failing else 200})
        if failing:
            return self.reply(status, {"error": "receiver is down"})
        self.reply(200 if path != "/pagerduty" else 202, {"ok": True} if path != "/pagerduty" else {"status": "success", "message": "Event processed"})


def otlp_traces(raw):
    """An OTLP/HTTP protobuf ExportTraceServiceRequest (a collector's view), read with
    opentelemetry-proto: {"spans": [...]} with ids in hex and attributes as plain values."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    def value(v):
        kind = v.WhichOneof("value")
        if kind == "array_value":
            return [value(x) for x in v.array_value.values]
        if kind == "kvlist_value":
            return {kv.key: value(kv.value) for kv in v.kvlist_value.values}
        return None if kind is None else getattr(v, kind)

    request = ExportTraceServiceRequest()
    request.ParseFromString(raw)
    spans = []
    for rs in request.resource_spans:
        resource = {kv.key: value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for span in ss.spans:
                spans.append({
                    "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(), "parent_span_id": span.parent_span_id.hex(),
                    "name": span.name, "kind": span.kind, "start": span.start_time_unix_nano, "end": span.end_time_unix_nano,
                    "status_code": span.status.code, "resource": resource, "scope": ss.scope.name,
                    "attributes": {kv.key: value(kv.value) for kv in span.attributes},
                })
    return {"spans": spans}


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
