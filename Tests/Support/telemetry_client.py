"""Sends telemetry to Gatehouse the way real apps do, for the end-to-end tests.

    telemetry_client.py sentry --dsn DSN [--no-brotli] [--tag correlation_id=abc] [--message TEXT] [--no-user]
    telemetry_client.py logging --url http://127.0.0.1:PORT/api/v1/logs [--key KEY]
    telemetry_client.py otel --endpoint http://127.0.0.1:PORT/v1/logs [--key KEY]

Each prints one JSON line describing what it sent.
"""
import argparse
import json
import logging
import sys
import time
import urllib.request


def sentry(args):
    if args.no_brotli:
        # sentry-sdk picks brotli whenever the module imports; make that import fail.
        sys.modules["brotli"] = None
    import sentry_sdk

    sent = []
    sentry_sdk.init(dsn=args.dsn, release="app@1.2.3", environment="test", default_integrations=False,
                    before_send=lambda event, hint: (sent.append(event["event_id"]), event)[1])
    transport = sentry_sdk.get_client().transport
    compression = getattr(transport, "_compression_algo", None)
    for key_value in args.tag or []:
        key, value = key_value.split("=", 1)
        sentry_sdk.set_tag(key, value)
    if not args.no_user:
        sentry_sdk.set_user({"id": "user-1", "email": "ada@example.com"})
    sentry_sdk.add_breadcrumb(category="auth", message="signed in", level="info")
    if args.message:  # only this one message event (its own issue)
        sentry_sdk.capture_message(args.message, level="error")
        sentry_sdk.flush(timeout=10)
        print(json.dumps({"event_ids": sent, "compression": compression}))
        return

    def lookup(user_id):
        raise ValueError(f"User {user_id} not found in https://api.example.com/users/{user_id}")

    for user_id in (4821, 17):  # one issue: the numbers and URL are parameterized away
        try:
            lookup(user_id)
        except ValueError:
            sentry_sdk.capture_exception()
    try:
        {}["missing"]
    except KeyError:
        sentry_sdk.capture_exception()  # a second issue
    try:
        try:
            1 / 0
        except ZeroDivisionError as cause:
            raise RuntimeError("report failed") from cause
    except RuntimeError:
        sentry_sdk.capture_exception()  # a chained exception: a third issue
    sentry_sdk.capture_message("Nightly export finished with 3 warnings", level="warning")
    sentry_sdk.flush(timeout=10)
    print(json.dumps({"event_ids": sent, "compression": compression}))


class GatehouseJSONHandler(logging.Handler):
    """A JSON log handler of the kind apps write: batches records and POSTs them as NDJSON."""

    def __init__(self, url, key=None):
        super().__init__()
        self.url, self.key, self.buffer = url, key, []

    def emit(self, record):
        line = {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + ".%03dZ" % record.msecs,
                "level": record.levelname, "message": record.getMessage(), "service": "worker", "logger": record.name}
        line.update(getattr(record, "fields", {}))
        self.buffer.append(json.dumps(line))

    def flush(self):
        if not self.buffer:
            return
        body = ("\n".join(self.buffer) + "\n").encode()
        headers = {"Content-Type": "application/x-ndjson"}
        if self.key:
            headers["Authorization"] = "Bearer " + self.key
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            self.result = json.loads(response.read())
        self.buffer = []


def python_logging(args):
    handler = GatehouseJSONHandler(args.url, args.key)
    log = logging.getLogger("tasks")
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    log.warning("Slow query detected", extra={"fields": {"correlationId": "corr-logging-1", "function": "tasks.list",
                                                          "duration": "237.42ms", "dbCalls": 15, "docsScanned": 342}})
    log.error("Task update failed", extra={"fields": {"correlationId": "corr-logging-1", "function": "tasks.update", "code": "OCC"}})
    log.info("Task listed", extra={"fields": {"function": "tasks.list", "dbCalls": 60}})
    handler.flush()
    print(json.dumps(handler.result))


def otel(args):
    from opentelemetry._logs import set_logger_provider
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    headers = {"Authorization": "Bearer " + args.key} if args.key else {}
    provider = LoggerProvider(resource=Resource.create({"service.name": "checkout", "deployment.environment": "test"}))
    set_logger_provider(provider)
    provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=args.endpoint, headers=headers)))
    log = logging.getLogger("otel-app")
    log.setLevel(logging.INFO)
    log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=provider))
    log.error("Payment declined for order %s", "A-1001", extra={"correlationId": "corr-otel-1", "dbCalls": 3})
    log.info("Checkout finished")
    ok = provider.force_flush(10_000)
    provider.shutdown()
    print(json.dumps({"flushed": ok}))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sentry")
    s.add_argument("--dsn", required=True)
    s.add_argument("--no-brotli", action="store_true")
    s.add_argument("--tag", action="append")
    s.add_argument("--message")
    s.add_argument("--no-user", action="store_true")
    l = sub.add_parser("logging")
    l.add_argument("--url", required=True)
    l.add_argument("--key")
    o = sub.add_parser("otel")
    o.add_argument("--endpoint", required=True)
    o.add_argument("--key")
    args = parser.parse_args()
    {"sentry": sentry, "logging": python_logging, "otel": otel}[args.command](args)


if __name__ == "__main__":
    main()
