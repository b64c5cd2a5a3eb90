"""Exports a small trace with the real OpenTelemetry SDK, for OTLPTracesEndToEndTests.

    otel_traces_client.py --endpoint URL/v1/traces --key INGEST_KEY --gateway BASE_URL --model MODEL

With opentelemetry-sdk and its OTLP/HTTP protobuf exporter (BatchSpanProcessor): a SERVER span
`POST /checkout` holding `load cart` (which holds a failing `SELECT carts` with an event) and a
CLIENT span `ask model`, inside which the app calls Gatehouse's gateway with the W3C
`traceparent` the SDK's propagator injects. Prints one JSON line: the spans the SDK exported
(ids in hex, parents, kinds, times in microseconds), whether every export succeeded, and the
gateway's answer.
"""
import argparse
import json
import urllib.request

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.propagate import inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

exported = []
results = []


class RecordingExporter(OTLPSpanExporter):
    """The SDK's own exporter; it also keeps what it sent and how each export went."""

    def export(self, spans):
        result = super().export(spans)
        results.append(result == SpanExportResult.SUCCESS)
        for s in spans:
            exported.append({
                "name": s.name,
                "trace_id": format(s.context.trace_id, "032x"),
                "span_id": format(s.context.span_id, "016x"),
                "parent_span_id": format(s.parent.span_id, "016x") if s.parent else None,
                "kind": s.kind.name.lower(),
                "start": s.start_time // 1000,
                "end": s.end_time // 1000,
                "error": s.status.status_code == StatusCode.ERROR,
            })
        return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--model", required=True)
    args = parser.parse_args()

    resource = Resource.create({"service.name": "checkout", "deployment.environment.name": "e2e", "service.version": "2.4.1",
                                "host.name": "web-7"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(RecordingExporter(endpoint=args.endpoint, headers={"Authorization": "Bearer " + args.key})))
    tracer = provider.get_tracer("shop.checkout", "1.0")

    gateway = {}
    with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER,
                                      attributes={"http.request.method": "POST", "http.route": "/checkout", "user.password": "hunter2-e2e-secret"}):
        with tracer.start_as_current_span("load cart"):
            with tracer.start_as_current_span("SELECT carts", kind=SpanKind.CLIENT,
                                              attributes={"db.system": "postgresql", "db.statement": "SELECT * FROM carts"}) as query:
                query.add_event("retry", {"attempt": 2})
                query.set_status(Status(StatusCode.ERROR, "deadlock detected"))
        with tracer.start_as_current_span("ask model", kind=SpanKind.CLIENT) as ask:
            headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-app-client-key-0001"}
            inject(headers)
            body = {"model": args.model, "max_tokens": 16, "temperature": 0.3, "messages": [{"role": "user", "content": "Suggest a gift."}]}
            request = urllib.request.Request(args.gateway + "/v1/chat/completions", data=json.dumps(body).encode(), headers=headers, method="POST")
            with urllib.request.urlopen(request, timeout=30) as response:
                gateway = {"status": response.status, "record_id": response.headers.get("Gatehouse-Record-Id"), "traceparent": headers["traceparent"]}
            ask.set_attribute("gen_ai.request.model", args.model)

    flushed = provider.force_flush(10_000)
    provider.shutdown()
    print(json.dumps({"flushed": flushed, "exports_ok": bool(results) and all(results), "spans": exported, "gateway": gateway}))


if __name__ == "__main__":
    main()
