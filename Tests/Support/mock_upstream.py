#!/usr/bin/env python3
"""A fake LLM provider speaking the OpenAI and Anthropic wire formats, for Gatehouse's tests.

Python 3.11 standard library only. HTTP/1.1 with keep-alive on asyncio streams.

    python3 mock_upstream.py --host 127.0.0.1 --port 0 --port-file PATH

binds, writes the port it got to PATH (atomically), and serves until SIGTERM or SIGINT.

Routes
    POST /v1/chat/completions   POST /v1/completions   POST /v1/embeddings
    POST /v1/responses          GET  /v1/models        GET  /v1/models/{id}
    POST /v1/messages           (Anthropic)
    GET /__mock/requests        every request seen, as JSON
    DELETE /__mock/requests     forget them
    POST /__mock/reset          forget them and the x-mock-fail-times counters

Request headers that make it misbehave (names are case-insensitive)
    x-mock-delay-ms: N              wait N ms before the response headers
    x-mock-chunk-delay-ms: N        wait N ms between streamed events
    x-mock-status: CODE             answer CODE with an error body in the route's provider format
    x-mock-fail-times: N            ...only for the first N requests with the same x-mock-key
    x-mock-key: K                   the key those requests are counted under
    x-mock-cut-after: N             streams: after the start events and N content deltas, close the
                                    connection without the terminating zero-length chunk
    x-mock-stall-after: N           streams: after the start events and N content deltas, go silent
                                    for x-mock-stall-ms (default 60000), then carry on
    x-mock-cached-tokens: N         OpenAI cached_tokens (part of the input) / Anthropic cache_read_input_tokens
    x-mock-reasoning-tokens: N      OpenAI reasoning_tokens (part of the output); ignored for Anthropic
    x-mock-cache-creation-tokens: N Anthropic cache_creation_input_tokens; ignored for OpenAI

Usage is deterministic: input tokens = max(1, len(canonical JSON of the prompt part) // 4) + 3,
output tokens = the number of words generated (N = max_tokens / max_completion_tokens /
max_output_tokens when 1..64, else 12), plus any reasoning tokens for OpenAI.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import email.utils
import gzip
import hashlib
import http
import json
import math
import os
import random
import signal
import string
import struct
import sys
import time
import zlib

# --------------------------------------------------------------------------------------------
# Deterministic content

WORDS = (
    "Hello from the Gatehouse mock upstream, a deterministic provider whose every answer is "
    "the same sentence so that tests can count words, tokens and chunks exactly and compare "
    "what the gateway stored with what the provider sent; nothing here is a real model, only "
    "a patient echo that speaks OpenAI and Anthropic streams byte for byte while the gateway "
    "meters, prices, records and relays each event to the caller without buffering a single byte."
).split()
assert len(WORDS) >= 64

DEFAULT_WORDS = 12
MAX_WORDS = 64

MODELS = [
    ("gpt-4o-mini", 1721172741),
    ("gpt-4o", 1715367049),
    ("gpt-4.1", 1744316542),
    ("gpt-4.1-mini", 1744318173),
    ("o3-mini", 1737146383),
    ("gpt-3.5-turbo-instruct", 1692901427),
    ("text-embedding-3-small", 1705948997),
    ("text-embedding-3-large", 1705953180),
]

_rng = random.Random()
_ALNUM = string.ascii_letters + string.digits


def _rand(alphabet: str, n: int) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def openai_id(prefix: str) -> str:
    return prefix + _rand(_ALNUM, 29)


def hex_id(prefix: str, n: int = 48) -> str:
    return prefix + "%0*x" % (n, _rng.getrandbits(4 * n))


def anthropic_id(prefix: str) -> str:
    return prefix + "01" + _rand(_ALNUM, 22)


def canonical(value) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def count_input_tokens(*parts) -> int:
    text = "".join(canonical(p) for p in parts if p is not None) or "null"
    return max(1, len(text) // 4) + 3


def word_budget(body: dict, *keys: str) -> tuple[int, bool]:
    """(words to generate, whether that is the caller's limit)."""
    for key in keys:
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            if 1 <= value <= MAX_WORDS:
                return value, True
            break
    return DEFAULT_WORDS, False


def make_words(n: int) -> list[str]:
    """The pieces streamed one per delta: 'Hello', ' from', ' the', ..."""
    return [(WORDS[i % len(WORDS)] if i == 0 else " " + WORDS[i % len(WORDS)]) for i in range(n)]


def embedding_vector(text: str, index: int, dimensions: int) -> list[float]:
    digest = hashlib.sha256(f"{index}:{text}".encode()).digest()
    while len(digest) < dimensions * 2:
        digest += hashlib.sha256(digest).digest()
    raw = [((digest[2 * i] << 8 | digest[2 * i + 1]) / 65535.0) * 2 - 1 for i in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    # Round-trip through float32 so float and base64 encodings carry the same numbers.
    return [struct.unpack("<f", struct.pack("<f", x / norm))[0] for x in raw]


# --------------------------------------------------------------------------------------------
# Usage objects, in each provider's own shape


class Knobs:
    """The x-mock-* request headers, parsed."""

    def __init__(self, headers: dict[str, str]):
        def n(name: str) -> int | None:
            value = headers.get(name)
            if value is None:
                return None
            try:
                return max(0, int(value.strip()))
            except ValueError:
                return None

        self.delay_ms = n("x-mock-delay-ms") or 0
        self.chunk_delay_ms = n("x-mock-chunk-delay-ms") or 0
        self.status = n("x-mock-status")
        self.fail_times = n("x-mock-fail-times")
        self.key = headers.get("x-mock-key", "")
        self.cut_after = n("x-mock-cut-after")
        self.stall_after = n("x-mock-stall-after")
        self.stall_ms = n("x-mock-stall-ms") or 60000
        self.cached = n("x-mock-cached-tokens") or 0
        self.reasoning = n("x-mock-reasoning-tokens") or 0
        self.cache_creation = n("x-mock-cache-creation-tokens") or 0


def chat_usage(input_tokens: int, words: int, k: Knobs) -> dict:
    prompt = max(input_tokens, k.cached)
    completion = words + k.reasoning
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": k.cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": k.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completions_usage(input_tokens: int, words: int, k: Knobs) -> dict:
    # The legacy endpoint reports the three totals only, unless a test asked for details.
    if k.cached or k.reasoning:
        return chat_usage(input_tokens, words, k)
    return {"prompt_tokens": input_tokens, "completion_tokens": words, "total_tokens": input_tokens + words}


def responses_usage(input_tokens: int, words: int, k: Knobs) -> dict:
    inp = max(input_tokens, k.cached)
    out = words + k.reasoning
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": k.cached},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": k.reasoning},
        "total_tokens": inp + out,
    }


def anthropic_usage(input_tokens: int, output_tokens: int, k: Knobs) -> dict:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": k.cache_creation,
        "cache_read_input_tokens": k.cached,
        "cache_creation": {"ephemeral_5m_input_tokens": k.cache_creation, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


# --------------------------------------------------------------------------------------------
# Errors


OPENAI_ERRORS = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", None),  # message filled in with the key
    403: ("invalid_request_error", "unsupported_country_region_territory", "Country, region, or territory not supported"),
    404: ("invalid_request_error", "model_not_found", None),
    409: ("invalid_request_error", None, "Conflict."),
    413: ("invalid_request_error", None, "Request too large."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded", None),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}

ANTHROPIC_ERRORS = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", None),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


_DEFAULT = object()


def openai_error_body(status: int, model: str | None, api_key: str | None, message: str | None = None,
                      param: str | None = None, code=_DEFAULT, etype: str | None = None) -> dict:
    default_type, default_code, default_message = OPENAI_ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, None))
    if message is None:
        message = default_message
        if status == 401:
            # Real OpenAI echoes (part of) the key; this one echoes all of it so that tests can
            # check the gateway never logs or stores it.
            message = (f"Incorrect API key provided: {api_key or ''}. You can find your API key at "
                       "https://platform.openai.com/account/api-keys.")
        elif status == 404:
            message = f"The model `{model or ''}` does not exist or you do not have access to it."
        elif status == 429:
            message = (f"Rate limit reached for {model or 'default'} in organization org-mock on requests per min "
                       "(RPM): Limit 3, Used 3, Requested 1. Please try again in 1s. Visit "
                       "https://platform.openai.com/account/rate-limits to learn more.")
        elif message is None:
            message = f"Mock error {status}."
    return {"error": {"message": message, "type": etype or default_type, "param": param,
                      "code": default_code if code is _DEFAULT else code}}


def anthropic_error_body(status: int, model: str | None, message: str | None = None, etype: str | None = None) -> dict:
    default_type, default_message = ANTHROPIC_ERRORS.get(
        status, ("api_error" if status >= 500 else "invalid_request_error", None))
    if message is None:
        message = default_message
        if status == 404:
            message = f"model: {model or ''}"
        elif message is None:
            message = f"Mock error {status}."
    return {"type": "error", "error": {"type": etype or default_type, "message": message},
            "request_id": anthropic_id("req_")}


# --------------------------------------------------------------------------------------------
# HTTP plumbing


REASONS = {529: "Site Overloaded"}


def reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return REASONS.get(status, "Unknown")


class ClientGone(Exception):
    pass


class Request:
    def __init__(self, method: str, target: str, version: str, header_list: list[tuple[str, str]], body: bytes):
        self.method = method
        self.target = target
        self.path, _, self.query = target.partition("?")
        self.version = version
        self.header_list = header_list
        headers: dict[str, str] = {}
        for name, value in header_list:
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        self.headers = headers
        self.body = body

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


async def read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # the client closed between requests
    lines = head[:-4].decode("latin-1").split("\r\n")
    while lines and not lines[0]:
        lines.pop(0)  # tolerate stray CRLFs before a request line
    if not lines:
        return None
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise ValueError(f"bad request line {lines[0]!r}")
    method, target, version = parts
    header_list = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            header_list.append((name.strip(), value.strip()))
    request = Request(method, target, version, header_list, b"")
    if request.headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        body = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        request.body = bytes(body)
    else:
        length = int(request.headers.get("content-length", "0") or "0")
        request.body = await reader.readexactly(length) if length else b""
    encoding = request.headers.get("content-encoding", "").lower()
    if encoding == "gzip":
        request.body = gzip.decompress(request.body)
    elif encoding == "deflate":
        request.body = zlib.decompress(request.body)
    return request


class Response:
    """Writes one response on a connection."""

    def __init__(self, writer: asyncio.StreamWriter, keep_alive: bool, provider_headers: list[tuple[str, str]]):
        self.writer = writer
        self.keep_alive = keep_alive
        self.provider_headers = provider_headers

    def _head(self, status: int, headers: list[tuple[str, str]]) -> bytes:
        lines = [f"HTTP/1.1 {status} {reason(status)}", f"Date: {email.utils.formatdate(usegmt=True)}"]
        lines += [f"{n}: {v}" for n, v in headers]
        lines += [f"{n}: {v}" for n, v in self.provider_headers]
        lines.append("Connection: " + ("keep-alive" if self.keep_alive else "close"))
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _send(self, data: bytes) -> None:
        if self.writer.is_closing():
            raise ClientGone()
        self.writer.write(data)
        try:
            await self.writer.drain()
        except (ConnectionError, RuntimeError) as error:
            raise ClientGone() from error

    async def json(self, status: int, obj, indent: int | None = None, headers: list[tuple[str, str]] = ()) -> None:
        if indent:
            body = json.dumps(obj, indent=indent, ensure_ascii=False).encode()
        else:
            body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        head = self._head(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers])
        await self._send(head + body)

    async def start_stream(self) -> None:
        await self._send(self._head(200, [("Content-Type", "text/event-stream; charset=utf-8"),
                                          ("Transfer-Encoding", "chunked"), ("Cache-Control", "no-cache")]))

    async def chunk(self, data: bytes) -> None:
        await self._send(b"%x\r\n" % len(data) + data + b"\r\n")

    async def end_stream(self) -> None:
        await self._send(b"0\r\n\r\n")

    async def cut(self) -> None:
        """Close the connection mid-body: the zero-length chunk never comes."""
        self.keep_alive = False
        try:
            await self.writer.drain()
        except (ConnectionError, RuntimeError):
            pass
        self.writer.close()


# --------------------------------------------------------------------------------------------
# The server


class MockUpstream:
    def __init__(self) -> None:
        self.records: list[dict] = []
        self.fail_counts: dict[str, int] = {}
        self.connections: set[asyncio.Task] = set()

    async def handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self.connections.add(task)
        try:
            while True:
                try:
                    request = await read_request(reader, writer)
                except (ValueError, asyncio.LimitOverrunError, zlib.error, OSError, EOFError,
                        asyncio.IncompleteReadError):
                    if not writer.is_closing():
                        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    break
                if request is None:
                    break
                try:
                    keep_alive = await self.dispatch(request, writer)
                except ClientGone:
                    break
                if not keep_alive:
                    break
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.connections.discard(task)
            try:
                writer.close()
            except Exception:
                pass

    async def dispatch(self, request: Request, writer: asyncio.StreamWriter) -> bool:
        path = request.path.rstrip("/") or "/"
        if path.startswith("/__mock/"):
            return await self.control(request, path, writer)

        anthropic = path == "/v1/messages" or path.startswith("/v1/messages/")
        provider_headers = anthropic_headers() if anthropic else openai_headers()
        response = Response(writer, request.keep_alive, provider_headers)
        knobs = Knobs(request.headers)
        record = {
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "headers": dict(request.headers),
            "body": None,
            "stream": False,
            "cut": False,
            "status": 0,
            "usage": None,
        }
        self.records.append(record)

        body = None
        body_error = None
        if request.body:
            try:
                body = json.loads(request.body)
            except (ValueError, UnicodeDecodeError) as error:
                body_error = f"{error}"
        record["body"] = body
        if isinstance(body, dict):
            record["stream"] = body.get("stream") is True
        model = body.get("model") if isinstance(body, dict) else None
        api_key = request.headers.get("x-api-key") if anthropic else \
            request.headers.get("authorization", "").removeprefix("Bearer ").strip() or None

        if knobs.delay_ms:
            await asyncio.sleep(knobs.delay_ms / 1000)

        async def fail(status: int, **kw) -> bool:
            record["status"] = status
            extra = [("Retry-After", "1")] if status == 429 else []
            if anthropic:
                extra += [("x-should-retry", "true" if status in (408, 409, 429) or status >= 500 else "false")]
                await response.json(status, anthropic_error_body(status, model, **kw), headers=extra)
            else:
                await response.json(status, openai_error_body(status, model, api_key, **kw), indent=4, headers=extra)
            return response.keep_alive

        routes = {
            ("POST", "/v1/chat/completions"): self.chat_completions,
            ("POST", "/v1/completions"): self.completions,
            ("POST", "/v1/embeddings"): self.embeddings,
            ("POST", "/v1/responses"): self.responses,
            ("GET", "/v1/models"): self.models,
            ("POST", "/v1/messages"): self.messages,
        }
        handler = routes.get((request.method, path))
        if handler is None and request.method == "GET" and path.startswith("/v1/models/"):
            handler = self.model
        if handler is None:
            if anthropic:
                return await fail(404, message="Not Found", etype="not_found_error")
            return await fail(404, message=f"Invalid URL ({request.method} {request.path})", code=None,
                              etype="invalid_request_error")

        if request.method == "POST":
            if body_error is not None or not request.body:
                if anthropic:
                    return await fail(400, message=f"There was an error parsing the body of your request: {body_error or 'empty body'}",
                                      etype="invalid_request_error")
                return await fail(400, message=(
                    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
                    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. "
                    "If you have trouble figuring out how to fix this, please contact us through our help center at "
                    "help.openai.com.)"), code=None, etype="invalid_request_error")
            if not isinstance(body, dict):
                if anthropic:
                    return await fail(400, message="Input should be a valid dictionary", etype="invalid_request_error")
                return await fail(400, message=f"{canonical(body)[:200]} is not of type 'object'", code=None,
                                  etype="invalid_request_error")
            if not isinstance(model, str) or not model:
                if anthropic:
                    return await fail(400, message="model: Field required", etype="invalid_request_error")
                return await fail(400, message="you must provide a model parameter", code=None,
                                  etype="invalid_request_error")

        if knobs.status is not None and knobs.status >= 400:
            failing = True
            if knobs.fail_times is not None:
                seen = self.fail_counts.get(knobs.key, 0)
                self.fail_counts[knobs.key] = seen + 1
                failing = seen < knobs.fail_times
            if failing:
                return await fail(knobs.status)

        return await handler(request, body or {}, knobs, response, record)

    async def control(self, request: Request, path: str, writer: asyncio.StreamWriter) -> bool:
        response = Response(writer, request.keep_alive, [])
        if path == "/__mock/requests" and request.method == "GET":
            await response.json(200, self.records)
        elif path == "/__mock/requests" and request.method == "DELETE":
            self.records.clear()
            await response.json(200, {"ok": True})
        elif path == "/__mock/reset" and request.method == "POST":
            self.records.clear()
            self.fail_counts.clear()
            await response.json(200, {"ok": True})
        elif path == "/__mock/health":
            await response.json(200, {"ok": True})
        else:
            await response.json(404, {"error": {"message": f"no mock control route {request.method} {path}",
                                                 "type": "invalid_request_error", "param": None, "code": None}})
        return response.keep_alive

    # ---- streaming helper -------------------------------------------------------------------

    async def run_stream(self, response: Response, knobs: Knobs, record: dict,
                         start: list[bytes], deltas: list[bytes], finish: list[bytes],
                         usage_after_start, usage_final) -> bool:
        """Send start events, deltas and finish events, each as its own chunk; honour cut-after."""
        record["status"] = 200
        await response.start_stream()
        record["usage"] = usage_after_start
        first = True

        async def send(event: bytes) -> None:
            nonlocal first
            if not first and knobs.chunk_delay_ms:
                await asyncio.sleep(knobs.chunk_delay_ms / 1000)
            first = False
            await response.chunk(event)

        for event in start:
            await send(event)
        for index, event in enumerate(deltas):
            if knobs.cut_after is not None and index >= knobs.cut_after:
                break
            if knobs.stall_after is not None and index == knobs.stall_after:
                record["stalled"] = True
                await asyncio.sleep(knobs.stall_ms / 1000)
            await send(event)
        if knobs.cut_after is not None:
            record["cut"] = True
            await response.cut()
            return False
        for event in finish:
            await send(event)
        record["usage"] = usage_final
        await response.end_stream()
        return response.keep_alive

    # ---- OpenAI -------------------------------------------------------------------------------

    async def chat_completions(self, request, body, knobs, response, record) -> bool:
        model = body["model"]
        n, limited = word_budget(body, "max_completion_tokens", "max_tokens")
        pieces = make_words(n)
        finish_reason = "length" if limited else "stop"
        usage = chat_usage(count_input_tokens(body.get("messages")), n, knobs)
        ident = openai_id("chatcmpl-")
        created = int(time.time())
        fingerprint = hex_id("fp_", 10)

        if not body.get("stream"):
            record["status"] = 200
            record["usage"] = usage
            await response.json(200, {
                "id": ident,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(pieces), "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }],
                "usage": usage,
                "service_tier": "default",
                "system_fingerprint": fingerprint,
            }, indent=2)
            return response.keep_alive

        include_usage = bool((body.get("stream_options") or {}).get("include_usage")) \
            if isinstance(body.get("stream_options"), dict) else False

        def chunk(choices, usage_value=None) -> bytes:
            obj = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                   "service_tier": "default", "system_fingerprint": fingerprint, "choices": choices}
            if include_usage:
                obj["usage"] = usage_value
            return sse_data(obj)

        start = [chunk([{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None},
                         "logprobs": None, "finish_reason": None}])]
        deltas = [chunk([{"index": 0, "delta": {"content": p}, "logprobs": None, "finish_reason": None}]) for p in pieces]
        finish = [chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish_reason}])]
        if include_usage:
            finish.append(chunk([], usage))
        finish.append(b"data: [DONE]\n\n")
        return await self.run_stream(response, knobs, record, start, deltas, finish, None,
                                     usage if include_usage else None)

    async def completions(self, request, body, knobs, response, record) -> bool:
        model = body["model"]
        n, limited = word_budget(body, "max_tokens")
        pieces = make_words(n)
        finish_reason = "length" if limited else "stop"
        usage = completions_usage(count_input_tokens(body.get("prompt")), n, knobs)
        ident = openai_id("cmpl-")
        created = int(time.time())

        if not body.get("stream"):
            record["status"] = 200
            record["usage"] = usage
            await response.json(200, {
                "id": ident,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [{"text": "".join(pieces), "index": 0, "logprobs": None, "finish_reason": finish_reason}],
                "usage": usage,
            }, indent=2)
            return response.keep_alive

        include_usage = bool(body.get("stream_options", {}).get("include_usage")) \
            if isinstance(body.get("stream_options"), dict) else False

        def chunk(choices, usage_value=None) -> bytes:
            obj = {"id": ident, "object": "text_completion", "created": created, "choices": choices, "model": model}
            if include_usage:
                obj["usage"] = usage_value
            return sse_data(obj)

        deltas = [chunk([{"text": p, "index": 0, "logprobs": None, "finish_reason": None}]) for p in pieces]
        finish = [chunk([{"text": "", "index": 0, "logprobs": None, "finish_reason": finish_reason}])]
        if include_usage:
            finish.append(chunk([], usage))
        finish.append(b"data: [DONE]\n\n")
        return await self.run_stream(response, knobs, record, [], deltas, finish, None,
                                     usage if include_usage else None)

    async def embeddings(self, request, body, knobs, response, record) -> bool:
        raw = body.get("input")
        if isinstance(raw, str):
            inputs = [raw]
        elif isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
            inputs = [raw]  # one input given as token ids
        elif isinstance(raw, list) and raw:
            inputs = raw
        else:
            record["status"] = 400
            await response.json(400, openai_error_body(
                400, body.get("model"), None, message="'input' is a required property" if raw is None
                else "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
                param="input" if raw is None else None), indent=4)
            return response.keep_alive
        dims = body.get("dimensions")
        dims = dims if isinstance(dims, int) and 1 <= dims <= 4096 else 8
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for index, item in enumerate(inputs):
            vector = embedding_vector(canonical(item), index, dims)
            encoded = base64.b64encode(struct.pack("<%df" % dims, *vector)).decode() if as_base64 else vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = count_input_tokens(raw)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        record["status"] = 200
        record["usage"] = usage
        await response.json(200, {"object": "list", "data": data, "model": body["model"], "usage": usage}, indent=2)
        return response.keep_alive

    async def models(self, request, body, knobs, response, record) -> bool:
        record["status"] = 200
        await response.json(200, {"object": "list", "data": [
            {"id": name, "object": "model", "created": created, "owned_by": "system"} for name, created in MODELS
        ]}, indent=2)
        return response.keep_alive

    async def model(self, request, body, knobs, response, record) -> bool:
        name = request.path.rstrip("/").split("/v1/models/", 1)[1]
        created = dict(MODELS).get(name)
        if created is None:
            record["status"] = 404
            await response.json(404, openai_error_body(404, name, None, code="model_not_found"), indent=4)
        else:
            record["status"] = 200
            await response.json(200, {"id": name, "object": "model", "created": created, "owned_by": "system"}, indent=2)
        return response.keep_alive

    async def responses(self, request, body, knobs, response, record) -> bool:
        model = body["model"]
        n, _ = word_budget(body, "max_output_tokens")
        pieces = make_words(n)
        text = "".join(pieces)
        usage = responses_usage(count_input_tokens(body.get("input"), body.get("instructions")), n, knobs)
        ident = hex_id("resp_")
        item_id = hex_id("msg_")
        created = int(time.time())

        def response_object(status: str, output: list, usage_value, service_tier: str) -> dict:
            return {
                "id": ident,
                "object": "response",
                "created_at": created,
                "status": status,
                "background": False,
                "error": None,
                "incomplete_details": None,
                "instructions": body.get("instructions"),
                "max_output_tokens": body.get("max_output_tokens"),
                "max_tool_calls": body.get("max_tool_calls"),
                "model": model,
                "output": output,
                "parallel_tool_calls": body.get("parallel_tool_calls", True),
                "previous_response_id": body.get("previous_response_id"),
                "prompt_cache_key": body.get("prompt_cache_key"),
                "reasoning": {"effort": None, "summary": None},
                "safety_identifier": body.get("safety_identifier"),
                "service_tier": service_tier,
                "store": body.get("store", True),
                "temperature": body.get("temperature", 1.0),
                "text": {"format": {"type": "text"}, "verbosity": "medium"},
                "tool_choice": body.get("tool_choice", "auto"),
                "tools": body.get("tools", []),
                "top_logprobs": body.get("top_logprobs", 0),
                "top_p": body.get("top_p", 1.0),
                "truncation": body.get("truncation", "disabled"),
                "usage": usage_value,
                "user": body.get("user"),
                "metadata": body.get("metadata") or {},
            }

        def part(value: str) -> dict:
            return {"type": "output_text", "annotations": [], "logprobs": [], "text": value}

        def message(status: str, content: list) -> dict:
            return {"id": item_id, "type": "message", "status": status, "content": content, "role": "assistant"}

        final = response_object("completed", [message("completed", [part(text)])], usage, "default")

        if not body.get("stream"):
            record["status"] = 200
            record["usage"] = usage
            await response.json(200, final, indent=2)
            return response.keep_alive

        sequence = 0

        def event(kind: str, **fields) -> bytes:
            nonlocal sequence
            obj = {"type": kind, "sequence_number": sequence, **fields}
            sequence += 1
            return b"event: " + kind.encode() + b"\n" + sse_data(obj)

        at = {"item_id": item_id, "output_index": 0, "content_index": 0}
        start = [
            event("response.created", response=response_object("in_progress", [], None, "auto")),
            event("response.in_progress", response=response_object("in_progress", [], None, "auto")),
            event("response.output_item.added", output_index=0, item=message("in_progress", [])),
            event("response.content_part.added", **at, part=part("")),
        ]
        deltas = [event("response.output_text.delta", **at, delta=p, logprobs=[]) for p in pieces]
        finish = [
            event("response.output_text.done", **at, text=text, logprobs=[]),
            event("response.content_part.done", **at, part=part(text)),
            event("response.output_item.done", output_index=0, item=message("completed", [part(text)])),
            event("response.completed", response=final),
        ]
        return await self.run_stream(response, knobs, record, start, deltas, finish, None, usage)

    # ---- Anthropic ----------------------------------------------------------------------------

    async def messages(self, request, body, knobs, response, record) -> bool:
        model = body["model"]
        n, limited = word_budget(body, "max_tokens")
        pieces = make_words(n)
        stop_reason = "max_tokens" if limited else "end_turn"
        input_tokens = count_input_tokens(body.get("messages"), body.get("system"))
        ident = anthropic_id("msg_")
        final_usage = anthropic_usage(input_tokens, n, knobs)

        if not body.get("stream"):
            record["status"] = 200
            record["usage"] = final_usage
            await response.json(200, {
                "id": ident,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{"type": "text", "text": "".join(pieces)}],
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": final_usage,
            })
            return response.keep_alive

        start_usage = anthropic_usage(input_tokens, 1, knobs)

        def event(kind: str, obj: dict, compact: bool = True) -> bytes:
            data = json.dumps(obj, separators=(",", ":") if compact else None).encode()
            return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"

        start = [
            event("message_start", {"type": "message_start", "message": {
                "id": ident, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": None, "stop_sequence": None, "usage": start_usage}}),
            event("content_block_start", {"type": "content_block_start", "index": 0,
                                          "content_block": {"type": "text", "text": ""}}),
            event("ping", {"type": "ping"}, compact=False),
        ]
        deltas = [event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                "delta": {"type": "text_delta", "text": p}}) for p in pieces]
        finish = [
            event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            event("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                    "usage": {"output_tokens": n}}),
            event("message_stop", {"type": "message_stop"}),
        ]
        # What was sent so far, merged as the SDK merges it: message_start's usage, then the
        # cumulative output_tokens of message_delta.
        return await self.run_stream(response, knobs, record, start, deltas, finish, start_usage, final_usage)


def sse_data(obj) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


def openai_headers() -> list[tuple[str, str]]:
    return [
        ("openai-organization", "org-mock"),
        ("openai-processing-ms", str(_rng.randint(80, 400))),
        ("openai-version", "2020-10-01"),
        ("x-ratelimit-limit-requests", "10000"),
        ("x-ratelimit-limit-tokens", "200000"),
        ("x-ratelimit-remaining-requests", "9999"),
        ("x-ratelimit-remaining-tokens", "199950"),
        ("x-ratelimit-reset-requests", "6ms"),
        ("x-ratelimit-reset-tokens", "15ms"),
        ("x-request-id", hex_id("req_", 32)),
    ]


def anthropic_headers() -> list[tuple[str, str]]:
    return [
        ("request-id", anthropic_id("req_")),
        ("anthropic-organization-id", "00000000-0000-4000-8000-000000000000"),
        ("anthropic-ratelimit-requests-limit", "4000"),
        ("anthropic-ratelimit-requests-remaining", "3999"),
        ("anthropic-ratelimit-requests-reset", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 1))),
    ]


async def serve(host: str, port: int, port_file: str | None) -> None:
    mock = MockUpstream()
    server = await asyncio.start_server(mock.handle_connection, host, port, limit=16 * 1024 * 1024, backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    if port_file:
        temporary = f"{port_file}.{os.getpid()}.tmp"
        with open(temporary, "w") as handle:
            handle.write(f"{bound}\n")
        os.replace(temporary, port_file)
    print(f"mock upstream listening on {host}:{bound}", file=sys.stderr, flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()
    for task in list(mock.connections):
        task.cancel()
    await asyncio.gather(*mock.connections, return_exceptions=True)
    print("mock upstream stopped", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description="Mock OpenAI/Anthropic upstream for Gatehouse tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.port_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
