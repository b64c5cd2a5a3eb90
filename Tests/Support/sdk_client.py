#!/usr/bin/env python3
"""Drives the real, official OpenAI and Anthropic Python SDKs against a base URL.

    python3 sdk_client.py SCENARIO --base-url http://127.0.0.1:PORT --api-key KEY --model MODEL \
        [--header "Name: value" ...] [--max-tokens N]

Prints exactly one JSON object on stdout:
    {"ok", "text", "usage", "chunks", "usage_chunks", "id", "model", "models", "error"}
where error is null or {"type", "status", "message", "retry_after"}; some scenarios add
finish_reason / stop_reason / status / vectors / dimensions. An error raised by an SDK
(HTTP status, connection, a broken stream) is reported with ok=false and exit code 0, with what
had arrived before it (text, chunks, usage); a non-zero exit code means a bug in this script.
"usage_chunks" counts stream events that carried a usage object (chat/completions chunks with
non-null usage, response.created/completed with usage, Anthropic message_start/message_delta).

Scenarios: openai-chat, openai-chat-stream, openai-chat-stream-usage, openai-completions,
openai-completions-stream, openai-completions-stream-usage, openai-embeddings, openai-responses,
openai-responses-stream (client.responses.stream helper), openai-responses-stream-raw
(client.responses.create(stream=True)), openai-models, anthropic-messages,
anthropic-messages-stream (client.messages.stream helper + get_final_message()).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback

PROMPT = "Say hello to Gatehouse in a few words."
TIMEOUT = 30.0
ANTHROPIC_DEFAULT_MAX_TOKENS = 1024


def as_dict(value):
    """What the SDK parsed, as plain JSON (only the fields the server sent)."""
    if value is None:
        return None
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if hasattr(value, "model_dump"):
        return value.model_dump(exclude_unset=True)
    return value


def openai_client(args):
    import openai

    return openai.OpenAI(api_key=args.api_key, base_url=args.base_url.rstrip("/") + "/v1", max_retries=0,
                         timeout=TIMEOUT, default_headers=args.headers)


def anthropic_client(args):
    import anthropic

    return anthropic.Anthropic(api_key=args.api_key, base_url=args.base_url.rstrip("/"), max_retries=0,
                               timeout=TIMEOUT, default_headers=args.headers)


def limit(args, name: str) -> dict:
    return {name: args.max_tokens} if args.max_tokens is not None else {}


# ---- scenarios: each fills `out` as it goes, so a failure mid-stream still reports what arrived


def openai_chat(args, out):
    client = openai_client(args)
    completion = client.chat.completions.create(model=args.model, messages=[{"role": "user", "content": PROMPT}],
                                                **limit(args, "max_tokens"))
    out.update(id=completion.id, model=completion.model, usage=as_dict(completion.usage),
               text=completion.choices[0].message.content or "" if completion.choices else "",
               finish_reason=completion.choices[0].finish_reason if completion.choices else None)


def count_openai_chunk(out, chunk):
    """What every chat/completions stream chunk adds to the result: its id, model and usage."""
    out["chunks"] += 1
    out["id"], out["model"] = chunk.id, chunk.model
    if chunk.usage is not None:
        out["usage_chunks"] += 1
        out["usage"] = as_dict(chunk.usage)


def openai_chat_stream(args, out, include_usage: bool):
    client = openai_client(args)
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = client.chat.completions.create(model=args.model, messages=[{"role": "user", "content": PROMPT}],
                                            stream=True, **limit(args, "max_tokens"), **extra)
    for chunk in stream:
        count_openai_chunk(out, chunk)
        for choice in chunk.choices:
            if choice.delta and choice.delta.content:
                out["text"] += choice.delta.content
            if choice.finish_reason:
                out["finish_reason"] = choice.finish_reason


def openai_completions(args, out):
    client = openai_client(args)
    completion = client.completions.create(model=args.model, prompt=PROMPT, **limit(args, "max_tokens"))
    out.update(id=completion.id, model=completion.model, usage=as_dict(completion.usage),
               text=completion.choices[0].text if completion.choices else "",
               finish_reason=completion.choices[0].finish_reason if completion.choices else None)


def openai_completions_stream(args, out, include_usage: bool):
    client = openai_client(args)
    extra = {"stream_options": {"include_usage": True}} if include_usage else {}
    stream = client.completions.create(model=args.model, prompt=PROMPT, stream=True, **limit(args, "max_tokens"),
                                       **extra)
    for chunk in stream:
        count_openai_chunk(out, chunk)
        for choice in chunk.choices:
            out["text"] += choice.text or ""
            if choice.finish_reason:
                out["finish_reason"] = choice.finish_reason


def openai_embeddings(args, out):
    client = openai_client(args)
    result = client.embeddings.create(model=args.model, input=["Gatehouse", "an AI gateway"])
    out.update(model=result.model, usage=as_dict(result.usage), vectors=len(result.data),
               dimensions=len(result.data[0].embedding) if result.data else 0)


def openai_responses(args, out):
    client = openai_client(args)
    response = client.responses.create(model=args.model, input=PROMPT, **limit(args, "max_output_tokens"))
    out.update(id=response.id, model=response.model, usage=as_dict(response.usage), text=response.output_text,
               status=response.status)


def openai_responses_stream(args, out):
    """The SDK's streaming helper, which checks event order and identities as it accumulates."""
    client = openai_client(args)
    with client.responses.stream(model=args.model, input=PROMPT, **limit(args, "max_output_tokens")) as stream:
        for event in stream:
            out["chunks"] += 1
            if event.type == "response.output_text.delta":
                out["text"] += event.delta
            elif event.type in ("response.created", "response.completed"):
                out["id"], out["model"] = event.response.id, event.response.model
                if event.response.usage is not None:
                    out["usage_chunks"] += 1
        final = stream.get_final_response()
    out.update(id=final.id, model=final.model, usage=as_dict(final.usage), text=final.output_text,
               status=final.status)


def openai_responses_stream_raw(args, out):
    """client.responses.create(stream=True): the raw typed events."""
    client = openai_client(args)
    stream = client.responses.create(model=args.model, input=PROMPT, stream=True, **limit(args, "max_output_tokens"))
    for event in stream:
        out["chunks"] += 1
        if event.type == "response.output_text.delta":
            out["text"] += event.delta
        elif event.type in ("response.created", "response.completed"):
            out["id"], out["model"], out["status"] = event.response.id, event.response.model, event.response.status
            if event.response.usage is not None:
                out["usage_chunks"] += 1
                out["usage"] = as_dict(event.response.usage)


def openai_models(args, out):
    client = openai_client(args)
    out["models"] = [model.id for model in client.models.list()]


def anthropic_messages(args, out):
    client = anthropic_client(args)
    message = client.messages.create(model=args.model, max_tokens=args.max_tokens or ANTHROPIC_DEFAULT_MAX_TOKENS,
                                     messages=[{"role": "user", "content": PROMPT}])
    out.update(id=message.id, model=message.model, usage=as_dict(message.usage), stop_reason=message.stop_reason,
               text="".join(block.text for block in message.content if block.type == "text"))


ANTHROPIC_RAW_EVENTS = {"message_start", "content_block_start", "content_block_delta", "content_block_stop",
                        "message_delta", "message_stop"}


def anthropic_messages_stream(args, out):
    client = anthropic_client(args)
    with client.messages.stream(model=args.model, max_tokens=args.max_tokens or ANTHROPIC_DEFAULT_MAX_TOKENS,
                                messages=[{"role": "user", "content": PROMPT}]) as stream:
        try:
            for event in stream:
                if event.type not in ANTHROPIC_RAW_EVENTS:
                    continue  # the helper's derived events ("text", ...) repeat the raw ones
                out["chunks"] += 1
                if event.type == "message_start":
                    out["id"], out["model"] = event.message.id, event.message.model
                    out["usage_chunks"] += 1
                elif event.type == "content_block_delta" and event.delta.type == "text_delta":
                    out["text"] += event.delta.text
                elif event.type == "message_delta" and event.usage is not None:
                    out["usage_chunks"] += 1
            final = stream.get_final_message()
        except BaseException:
            snapshot = stream._current_snapshot_or_none() if hasattr(stream, "_current_snapshot_or_none") else None
            if snapshot is not None:
                out["usage"] = as_dict(snapshot.usage)  # what the SDK had accumulated when the stream broke
            raise
    out.update(id=final.id, model=final.model, usage=as_dict(final.usage), stop_reason=final.stop_reason,
               text="".join(block.text for block in final.content if block.type == "text"))


SCENARIOS = {
    "openai-chat": openai_chat,
    "openai-chat-stream": lambda a, o: openai_chat_stream(a, o, include_usage=False),
    "openai-chat-stream-usage": lambda a, o: openai_chat_stream(a, o, include_usage=True),
    "openai-completions": openai_completions,
    "openai-completions-stream": lambda a, o: openai_completions_stream(a, o, include_usage=False),
    "openai-completions-stream-usage": lambda a, o: openai_completions_stream(a, o, include_usage=True),
    "openai-embeddings": openai_embeddings,
    "openai-responses": openai_responses,
    "openai-responses-stream": openai_responses_stream,
    "openai-responses-stream-raw": openai_responses_stream_raw,
    "openai-models": openai_models,
    "anthropic-messages": anthropic_messages,
    "anthropic-messages-stream": anthropic_messages_stream,
}


def raised_by_this_script(error: BaseException) -> bool:
    """True when the innermost frame of the traceback is in this file: a bug here, not an SDK error."""
    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return os.path.abspath(tb.tb_frame.f_code.co_filename) == os.path.abspath(__file__)


def describe(error: BaseException) -> dict:
    message = str(error)
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    status = getattr(error, "status_code", None) or getattr(response, "status_code", None)
    cause = error.__cause__ or error.__context__
    if status is None and cause is not None and str(cause) and str(cause) not in message:
        message = f"{message} ({type(cause).__name__}: {cause})"  # e.g. what broke a stream
    return {
        "type": type(error).__name__,
        "status": status,
        "message": message,
        "retry_after": headers.get("retry-after") if headers is not None else None,
    }


def parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {text!r}")
    return name.strip(), value.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description="Drive the official OpenAI/Anthropic SDKs.")
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--base-url", required=True, help="the gateway root, e.g. http://127.0.0.1:8080")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--header", action="append", default=[], type=parse_header, metavar="'Name: value'")
    parser.add_argument("--max-tokens", type=int)
    args = parser.parse_args()
    args.headers = dict(args.header)

    out = {"ok": False, "text": "", "usage": None, "chunks": 0, "usage_chunks": 0, "id": None, "model": None,
           "models": None, "error": None}
    try:
        SCENARIOS[args.scenario](args, out)
        out["ok"] = True
    except Exception as error:  # noqa: BLE001 - an SDK error is a result; a bug in this file is not
        if raised_by_this_script(error):
            raise
        out["ok"] = False
        out["error"] = describe(error)
        print(f"sdk_client {args.scenario}: {type(error).__name__}: {error}", file=sys.stderr)
        traceback.print_exc(file=sys.stderr)
    sys.stderr.flush()
    print(json.dumps(out), flush=True)  # last line of the output, after anything on stderr
    return 0


if __name__ == "__main__":
    sys.exit(main())
