#!/usr/bin/env python3
"""Talks to a `gatehouse serve` that serves HTTPS itself, trusting only the test's own CA.

    python3 tls_client.py openai --base-url https://127.0.0.1:PORT --ca CA.pem --model MODEL
    python3 tls_client.py peer   --base-url https://127.0.0.1:PORT --ca CA.pem

openai: the real OpenAI SDK over its own HTTP client (httpx) with verify=CA: one call and one
streamed call. Prints {"ok", "text", "stream_text", "chunks", "error"}.
peer: a fresh TLS connection, verified against CA (host name 127.0.0.1 included); prints the
certificate the server presented: {"serial" (lower-case hex), "cn", "version", "alpn"}.
silent-h2: agrees on h2, sends the client preface and an empty SETTINGS frame, then never
answers anything (not the server's PING either) and reads until the server closes or --hold
seconds pass. Prints {"alpn", "closed", "seconds"}; prints {"connected": true} first, so a
test can act while it waits.
console-cookies: over HTTP/1.1 only, the console's sign-in form and a sign-in with the admin
token (--password). Prints {"login_status", "login_cookies", "signin_status", "signin_cookies"}.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import socket
import ssl
import sys
import time
from urllib.parse import urlencode, urlparse


def openai_scenario(args) -> dict:
    import httpx2 as httpx  # the HTTP client this openai release is built on
    import openai

    result = {"ok": False, "text": "", "stream_text": "", "chunks": 0, "error": None}
    with httpx.Client(verify=args.ca, timeout=30.0) as http:
        client = openai.OpenAI(api_key="sk-test-client-key-000", base_url=args.base_url.rstrip("/") + "/v1",
                               max_retries=0, http_client=http)
        try:
            reply = client.chat.completions.create(model=args.model, messages=[{"role": "user", "content": "Hello over TLS"}])
            result["text"] = reply.choices[0].message.content or ""
            for chunk in client.chat.completions.create(model=args.model, stream=True,
                                                        messages=[{"role": "user", "content": "Stream over TLS"}]):
                result["chunks"] += 1
                if chunk.choices and chunk.choices[0].delta.content:
                    result["stream_text"] += chunk.choices[0].delta.content
            result["ok"] = True
        except Exception as error:  # reported, not raised: the test shows it
            result["error"] = f"{type(error).__name__}: {error}"
    return result


def peer_scenario(args) -> dict:
    url = urlparse(args.base_url)
    context = ssl.create_default_context(cafile=args.ca)
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection((url.hostname, url.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=url.hostname) as tls:
            cert = tls.getpeercert()
            subject = dict(item for rdn in cert["subject"] for item in rdn)
            return {"serial": cert["serialNumber"].lower().lstrip("0"), "cn": subject.get("commonName"),
                    "version": tls.version(), "alpn": tls.selected_alpn_protocol()}


def silent_h2_scenario(args) -> dict:
    url = urlparse(args.base_url)
    context = ssl.create_default_context(cafile=args.ca)
    context.set_alpn_protocols(["h2"])
    with socket.create_connection((url.hostname, url.port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=url.hostname) as tls:
            tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            print(json.dumps({"connected": True}), flush=True)
            start = time.monotonic()
            deadline = start + args.hold
            closed = False
            while time.monotonic() < deadline:
                tls.settimeout(max(0.1, deadline - time.monotonic()))
                try:
                    if tls.recv(65536) == b"":
                        closed = True
                        break
                except socket.timeout:
                    break
                except (ConnectionResetError, ssl.SSLError):
                    closed = True
                    break
            return {"alpn": tls.selected_alpn_protocol(), "closed": closed, "seconds": round(time.monotonic() - start, 1)}


def console_cookies_scenario(args) -> dict:
    url = urlparse(args.base_url)
    context = ssl.create_default_context(cafile=args.ca)
    context.set_alpn_protocols(["http/1.1"])
    connection = http.client.HTTPSConnection(url.hostname, url.port, context=context, timeout=30)
    connection.request("GET", "/login")
    form = connection.getresponse()
    page = form.read().decode()
    login_cookies = form.headers.get_all("Set-Cookie") or []
    token = re.search(r'name="_csrf" value="([^"]*)"', page)
    jar = "; ".join(cookie.split(";")[0] for cookie in login_cookies)
    body = urlencode({"email": "", "password": args.password, "next": "/", "_csrf": token.group(1) if token else ""})
    connection.request("POST", "/login", body=body, headers={"Content-Type": "application/x-www-form-urlencoded", "Cookie": jar})
    signed_in = connection.getresponse()
    signed_in.read()
    return {"version": connection.sock.version() if connection.sock else None, "login_status": form.status,
            "login_cookies": login_cookies, "signin_status": signed_in.status,
            "signin_cookies": signed_in.headers.get_all("Set-Cookie") or []}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario", choices=["openai", "peer", "silent-h2", "console-cookies"])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--model", default="mock/gpt-4o-mini")
    parser.add_argument("--hold", type=float, default=30.0, help="silent-h2: the longest it waits for the server to close")
    parser.add_argument("--password", default="", help="console-cookies: the admin token")
    args = parser.parse_args()
    scenarios = {"openai": openai_scenario, "peer": peer_scenario, "silent-h2": silent_h2_scenario,
                 "console-cookies": console_cookies_scenario}
    result = scenarios[args.scenario](args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
