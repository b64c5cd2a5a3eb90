"""Sends a Sentry transaction the way a real app does, for the traces end-to-end tests.

    trace_client.py --dsn DSN

With the real sentry-sdk (traces_sample_rate=1.0): a transaction `POST /api/orders` with nested
spans (a query with a fetch inside it, an outgoing HTTP call whose URL carries a key) and an
error raised and captured inside it. Prints one JSON line: what the SDK sent (the transaction's
trace and span ids, names, parents and times in microseconds) and the error's event id.
"""
import argparse
import datetime
import json
import time


def micros(value):
    if isinstance(value, datetime.datetime):
        moment = value
    elif isinstance(value, (int, float)):
        return int(round(value * 1_000_000))
    else:
        moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return int(round(moment.timestamp() * 1_000_000))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    args = parser.parse_args()
    import sentry_sdk

    transactions, errors = [], []

    def keep_transaction(event, hint):
        transactions.append(event)
        return event

    def keep_error(event, hint):
        errors.append(event["event_id"])
        return event

    sentry_sdk.init(dsn=args.dsn, traces_sample_rate=1.0, release="shop@2.0.0", environment="test", server_name="web-1",
                    default_integrations=False, before_send_transaction=keep_transaction, before_send=keep_error)
    with sentry_sdk.start_transaction(op="http.server", name="POST /api/orders") as transaction:
        transaction.set_tag("region", "eu-1")
        with sentry_sdk.start_span(op="db.query", name="SELECT orders") as query:
            query.set_data("db.system", "postgresql")
            time.sleep(0.03)
            with query.start_child(op="db.fetch", name="fetch rows"):
                time.sleep(0.005)
        with sentry_sdk.start_span(op="http.client", name="POST https://pay.example/charge?api_key=sk-live-SECRET-0123456789"):
            time.sleep(0.015)
        try:
            raise ValueError("order 17 could not be charged")
        except ValueError:
            sentry_sdk.capture_exception()
            transaction.set_status("internal_error")
    sentry_sdk.flush(timeout=10)

    sent = transactions[0]
    trace = sent["contexts"]["trace"]
    print(json.dumps({
        "trace_id": trace["trace_id"],
        "span_id": trace["span_id"],
        "name": sent["transaction"],
        "start": micros(sent["start_timestamp"]),
        "end": micros(sent["timestamp"]),
        "spans": [{
            "span_id": span["span_id"],
            "parent_span_id": span["parent_span_id"],
            "op": span.get("op"),
            "description": span.get("description"),
            "start": micros(span["start_timestamp"]),
            "end": micros(span["timestamp"]),
        } for span in sent.get("spans", [])],
        "error_ids": errors,
    }))


if __name__ == "__main__":
    main()
