#!/usr/bin/env python3
"""Open-loop, constant-rate HTTP/1.1 load generator (standard library only).

Request i is *intended* to be sent at  start + i / rate  whatever happened to earlier requests
(open loop). Latency is measured from that intended time to the last byte of the response, so a
stalled server is charged for the requests that queued up behind the stall (no coordinated
omission, as in wrk2 / HdrHistogram's "corrected" mode).

How it keeps its own overhead small on a 2-core machine:
  * one thread, one epoll loop, a pool of pre-opened keep-alive connections (TCP_NODELAY);
  * the send clock is a periodic Linux timerfd (nanosecond resolution, via ctypes), not an
    epoll timeout, which Python rounds up to whole milliseconds;
  * a minimal HTTP/1.1 response parser (Content-Length or chunked), garbage collector off.
It reports its own cost: CPU time per request and the send lag (actual send - intended send),
so a reader can tell whether the generator or the target is being measured.

If every pooled connection is busy when a request is due, the request waits in a FIFO for the
next free connection (its latency still counts from the intended time), and new connections are
opened up to --max-connections.

Output: one JSON document (--json, else stdout) and a one-line summary on stderr.
Exit status: 0 when the run completed (whatever the error count; the caller judges), 2 on bad
arguments or when no connection could be opened.
"""

import argparse
import collections
import ctypes
import gc
import json
import math
import os
import resource
import select
import socket
import sys
import time
from urllib.parse import urlsplit

VERSION = "1.0"

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
EPOLLERR = select.EPOLLERR
EPOLLHUP = select.EPOLLHUP

now_ns = time.monotonic_ns  # CLOCK_MONOTONIC, the same clock the timerfd uses


# --------------------------------------------------------------------------------------------
# Periodic timer
# --------------------------------------------------------------------------------------------
class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _ts(ns):
    return _Timespec(ns // 1_000_000_000, ns % 1_000_000_000)


class PeriodicTimer:
    """A timerfd that becomes readable every `period_ns`, first at absolute time `first_ns`.

    Falls back to fd=None (the caller then uses epoll timeouts, millisecond granularity) when
    timerfd is unavailable.
    """

    def __init__(self, first_ns, period_ns):
        self.fd = None
        self.kind = "epoll-timeout-ms"
        if hasattr(os, "timerfd_create"):  # Python >= 3.13
            try:
                fd = os.timerfd_create(time.CLOCK_MONOTONIC,
                                       flags=os.TFD_NONBLOCK | os.TFD_CLOEXEC)
                os.timerfd_settime_ns(fd, flags=os.TFD_TIMER_ABSTIME,
                                      initial=first_ns, interval=period_ns)
                self.fd, self.kind = fd, "timerfd"
                return
            except OSError:
                pass
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.timerfd_create(1, 0o4000 | 0o2000000)  # CLOCK_MONOTONIC, NONBLOCK|CLOEXEC
            if fd < 0:
                return
            spec = _Itimerspec(_ts(period_ns), _ts(first_ns))
            if libc.timerfd_settime(fd, 1, ctypes.byref(spec), None) != 0:  # TFD_TIMER_ABSTIME
                os.close(fd)
                return
            self.fd, self.kind = fd, "timerfd"
        except (OSError, AttributeError):
            self.fd = None

    def drain(self):
        try:
            os.read(self.fd, 8)
        except BlockingIOError:
            pass

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# --------------------------------------------------------------------------------------------
# HTTP/1.1 response parsing
# --------------------------------------------------------------------------------------------
class Conn:
    __slots__ = ("sock", "fd", "buf", "intended", "sent", "hdr_end", "status", "clen",
                 "chunked", "close_after", "until_close", "chunk_pos", "pending", "served")

    def __init__(self, sock):
        self.sock = sock
        self.fd = sock.fileno()
        self.buf = bytearray()
        self.intended = None  # intended send time of the in-flight request, None when idle
        self.sent = 0
        self.pending = b""   # unsent tail of the request, when send() was partial
        self.served = 0
        self.reset_parser()

    def reset_parser(self):
        self.hdr_end = -1
        self.status = 0
        self.clen = -1
        self.chunked = False
        self.close_after = False
        self.until_close = False
        self.chunk_pos = 0


def _parse_headers(c):
    """Parse the status line and headers once the blank line is in the buffer. Returns False
    while incomplete, raises ValueError on a malformed response."""
    buf = c.buf
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > 65536:
            raise ValueError("response header too large")
        return False
    head = bytes(buf[:end]).lower()
    if not head.startswith(b"http/1."):
        raise ValueError("not an HTTP/1.x response")
    c.status = int(head[9:12])
    c.hdr_end = end + 4
    i = head.find(b"\r\ncontent-length:")
    if i >= 0:
        j = head.find(b"\r\n", i + 2)
        c.clen = int(head[i + 17: j if j >= 0 else len(head)].strip())
    i = head.find(b"\r\ntransfer-encoding:")
    if i >= 0:
        j = head.find(b"\r\n", i + 2)
        if b"chunked" in head[i: j if j >= 0 else len(head)]:
            c.chunked = True
            c.chunk_pos = c.hdr_end
    i = head.find(b"\r\nconnection:")
    if i >= 0:
        j = head.find(b"\r\n", i + 2)
        if b"close" in head[i: j if j >= 0 else len(head)]:
            c.close_after = True
    if head.startswith(b"http/1.0") and b"keep-alive" not in head:
        c.close_after = True
    if c.status in (204, 304) or 100 <= c.status < 200:
        c.clen = 0
        c.chunked = False
    elif not c.chunked and c.clen < 0:
        c.until_close = True  # body delimited by the server closing the connection
    return True


def _response_complete(c):
    """True when the whole response is in c.buf (headers parsed first)."""
    if c.hdr_end < 0 and not _parse_headers(c):
        return False
    if c.chunked:
        buf = c.buf
        pos = c.chunk_pos
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                return False
            size = int(bytes(buf[pos:eol]).split(b";", 1)[0].strip(), 16)
            if size == 0:
                # optional trailers, then an empty line
                if buf[eol + 2: eol + 4] == b"\r\n":
                    return True
                return buf.find(b"\r\n\r\n", eol) >= 0
            nxt = eol + 2 + size + 2
            if len(buf) < nxt:
                c.chunk_pos = pos
                return False
            pos = nxt
            c.chunk_pos = pos
    if c.until_close:
        return False
    return len(c.buf) >= c.hdr_end + c.clen


# --------------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------------
def percentile(sorted_vals, q):
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, math.ceil(q / 100.0 * len(sorted_vals)) - 1))
    return sorted_vals[k]


def summarize_ns(vals):
    if not vals:
        return None
    s = sorted(vals)
    ms = lambda v: round(v / 1e6, 4)  # noqa: E731
    return {
        "count": len(s),
        "min_ms": ms(s[0]),
        "mean_ms": ms(sum(s) / len(s)),
        "p50_ms": ms(percentile(s, 50)),
        "p90_ms": ms(percentile(s, 90)),
        "p99_ms": ms(percentile(s, 99)),
        "p999_ms": ms(percentile(s, 99.9)),
        "max_ms": ms(s[-1]),
    }


class Generator:
    def __init__(self, args):
        u = urlsplit(args.url)
        if u.scheme != "http":
            raise SystemExit("loadgen: only http:// URLs are supported")
        self.host = u.hostname
        self.port = u.port or 80
        if self.host not in ("127.0.0.1", "localhost", "::1") and not args.allow_non_loopback:
            raise SystemExit("loadgen: refusing a non-loopback target (%s)" % self.host)
        path = (u.path or "/") + ("?" + u.query if u.query else "")
        body = open(args.body_file, "rb").read() if args.body_file else b""
        headers = [
            "%s %s HTTP/1.1" % (args.method, path),
            "Host: %s:%d" % (self.host, self.port),
            "User-Agent: gatehouse-loadgen/" + VERSION,
            "Accept: application/json",
        ]
        if body:
            headers.append("Content-Type: application/json")
        headers.append("Content-Length: %d" % len(body))
        for h in args.header or []:
            headers.append(h)
        self.request = ("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + body

        self.rate = args.rate
        self.period_ns = int(round(1e9 / args.rate))
        self.warmup_n = int(round(args.warmup * args.rate))
        self.measure_n = int(round(args.duration * args.rate))
        self.total_n = self.warmup_n + self.measure_n
        self.timeout_ns = int(args.timeout * 1e9)
        self.n_conns = args.connections
        self.max_conns = max(args.max_connections, args.connections)

        self.ep = select.epoll()
        self.conns = {}                     # fd -> Conn
        self.idle = []                      # LIFO of idle Conns: keeps a few connections hot
        self.queue = collections.deque()    # intended times waiting for a free connection
        self.inflight = 0

        # results (measured window only, except the warmup_* counters)
        self.lat = []       # intended -> complete, ns
        self.svc = []       # actual send -> complete, ns
        self.lag = []       # actual send - intended, ns
        self.status = collections.Counter()
        self.errors = collections.Counter()
        self.warmup_done = 0
        self.warmup_failed = 0
        self.responses_total = 0
        self.queued_measured = 0
        self.max_queue = 0
        self.max_inflight = 0
        self.conns_opened = 0

    # -- connections ------------------------------------------------------------------------
    def open_conn(self):
        s = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET,
                          socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(2.0)
        try:
            s.connect((self.host, self.port))
        except OSError:
            s.close()
            raise
        s.setblocking(False)
        c = Conn(s)
        self.conns[c.fd] = c
        self.ep.register(c.fd, EPOLLIN)
        self.conns_opened += 1
        return c

    def drop_conn(self, c):
        self.conns.pop(c.fd, None)
        try:
            self.ep.unregister(c.fd)
        except (OSError, ValueError):
            pass
        c.sock.close()
        if c in self.idle:
            self.idle.remove(c)

    def get_conn(self):
        if self.idle:
            return self.idle.pop()
        if len(self.conns) < self.max_conns:
            try:
                return self.open_conn()
            except OSError:
                self.errors["connect"] += 1
        return None

    # -- requests ---------------------------------------------------------------------------
    def dispatch(self, intended):
        c = self.get_conn()
        if c is None:
            self.queue.append(intended)
            if len(self.queue) > self.max_queue:
                self.max_queue = len(self.queue)
            if intended >= self.measure_start:
                self.queued_measured += 1
            return
        self.send(c, intended)

    def send(self, c, intended):
        c.intended = intended
        c.reset_parser()
        c.sent = now_ns()
        self.inflight += 1
        if self.inflight > self.max_inflight:
            self.max_inflight = self.inflight
        try:
            n = c.sock.send(self.request)
        except OSError:
            self.fail(c, "write")
            return
        if n < len(self.request):
            c.pending = self.request[n:]
            self.ep.modify(c.fd, EPOLLIN | EPOLLOUT)

    def record(self, intended, sent, done, status):
        self.responses_total += 1
        if intended < self.measure_start:
            self.warmup_done += 1
            if not 200 <= status < 300:
                self.warmup_failed += 1
            return
        self.lat.append(done - intended)
        self.svc.append(done - sent)
        self.lag.append(sent - intended)
        self.status[status] += 1

    def count_error(self, intended, kind):
        if intended is None:
            return
        if intended < self.measure_start:
            self.warmup_failed += 1
        else:
            self.errors[kind] += 1

    def fail(self, c, kind):
        """The in-flight request on c failed: count it, replace the connection."""
        if c.intended is not None:
            self.inflight -= 1
            self.count_error(c.intended, kind)
            c.intended = None
        self.drop_conn(c)
        self.release(None)

    def release(self, c):
        """c (or a fresh connection when c is None) is free: serve the queue or park it."""
        while self.queue:
            if c is None:
                c = self.get_conn()
                if c is None:
                    return
            self.send(c, self.queue.popleft())
            return
        if c is not None:
            self.idle.append(c)

    def on_readable(self, c):
        try:
            data = c.sock.recv(262144)
        except BlockingIOError:
            return
        except OSError:
            self.fail(c, "read")
            return
        if not data:  # server closed the connection
            if c.intended is not None and c.hdr_end >= 0 and c.until_close:
                self.complete(c, now_ns(), reuse=False)
            elif c.intended is not None:
                self.fail(c, "read")
            else:
                self.drop_conn(c)  # an idle keep-alive connection was closed: just forget it
            return
        if c.intended is None:
            self.drop_conn(c)  # unsolicited bytes
            self.errors["protocol"] += 1
            return
        c.buf += data
        try:
            done = _response_complete(c)
        except ValueError:
            self.fail(c, "protocol")
            return
        if done:
            self.complete(c, now_ns(), reuse=not c.close_after)

    def complete(self, c, t, reuse):
        self.inflight -= 1
        self.record(c.intended, c.sent, t, c.status)
        c.intended = None
        c.served += 1
        del c.buf[:]
        if reuse:
            self.release(c)
        else:
            self.drop_conn(c)
            self.release(None)

    def on_writable(self, c):
        try:
            n = c.sock.send(c.pending)
        except BlockingIOError:
            return
        except OSError:
            self.fail(c, "write")
            return
        c.pending = c.pending[n:]
        if not c.pending:
            self.ep.modify(c.fd, EPOLLIN)

    def check_timeouts(self, t):
        limit = t - self.timeout_ns
        for c in list(self.conns.values()):
            if c.intended is not None and c.intended < limit:
                self.fail(c, "timeout")
        while self.queue and self.queue[0] < limit:
            self.count_error(self.queue.popleft(), "timeout")

    # -- main loop --------------------------------------------------------------------------
    def run(self, start_delay_s):
        for _ in range(self.n_conns):
            try:
                self.idle.append(self.open_conn())
            except OSError:
                self.errors["connect"] += 1
        if not self.conns:
            raise SystemExit("loadgen: cannot connect to %s:%d" % (self.host, self.port))
        self.idle.reverse()

        gc.collect()
        gc.disable()
        start = now_ns() + int(start_delay_s * 1e9)
        self.start = start
        self.measure_start = start + self.warmup_n * self.period_ns
        self.measure_end = start + self.total_n * self.period_ns
        timer = PeriodicTimer(start, self.period_ns)
        self.timer_kind = timer.kind
        if timer.fd is not None:
            self.ep.register(timer.fd, EPOLLIN)
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        nxt = 0               # index of the next request to send
        next_check = start
        deadline = self.measure_end + self.timeout_ns + 1_000_000_000
        poll = self.ep.poll
        conns = self.conns
        timer_fd = timer.fd
        while True:
            t = now_ns()
            if nxt < self.total_n:
                due = start + nxt * self.period_ns
                if timer_fd is not None:
                    wait = 0.05
                else:
                    wait = max(0.0, (due - t) / 1e9)
            else:
                if self.inflight == 0 and not self.queue:
                    break
                wait = 0.05
            if t > deadline:
                break
            for fd, ev in poll(min(wait, 0.05)):
                if fd == timer_fd:
                    timer.drain()
                    continue
                c = conns.get(fd)
                if c is None:
                    continue
                if ev & EPOLLOUT and c.pending:
                    self.on_writable(c)
                if ev & (EPOLLIN | EPOLLERR | EPOLLHUP) and c.fd in conns:
                    self.on_readable(c)
            t = now_ns()
            while nxt < self.total_n and start + nxt * self.period_ns <= t:
                self.dispatch(start + nxt * self.period_ns)
                nxt += 1
            if t >= next_check:
                self.check_timeouts(t)
                next_check = t + 20_000_000
        # whatever is still outstanding at the deadline timed out
        for c in list(self.conns.values()):
            if c.intended is not None:
                self.fail(c, "timeout")
        while self.queue:
            self.count_error(self.queue.popleft(), "timeout")
        self.not_sent = self.total_n - nxt
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu_s = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        self.wall_s = (now_ns() - start) / 1e9
        gc.enable()
        timer.close()
        for c in list(self.conns.values()):
            self.drop_conn(c)

    def result(self, args):
        ok = sum(n for s, n in self.status.items() if 200 <= s < 300)
        non2xx = sum(n for s, n in self.status.items() if not 200 <= s < 300)
        errors = sum(self.errors.values())
        sent_measured = self.measure_n - max(0, self.not_sent)
        lag_sorted = sorted(self.lag)
        late = sum(1 for v in self.lag if v > 1_000_000)
        return {
            "tool": "loadgen.py",
            "version": VERSION,
            "python": sys.version.split()[0],
            "url": args.url,
            "method": args.method,
            "timer": self.timer_kind,
            "target_rate": self.rate,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections_initial": self.n_conns,
            "connections_max": self.max_conns,
            "connections_opened": self.conns_opened,
            "requests_intended": self.measure_n,
            "requests_sent": sent_measured,
            "sent_rate": round(sent_measured / args.duration, 2) if args.duration else None,
            "responses": ok + non2xx,
            "ok_2xx": ok,
            "non_2xx": non2xx,
            "errors": errors,
            "error_kinds": dict(self.errors),
            "status_counts": {str(k): v for k, v in sorted(self.status.items())},
            "failure_ratio": round((non2xx + errors) / self.measure_n, 6) if self.measure_n else None,
            "warmup_responses": self.warmup_done,
            "warmup_failures": self.warmup_failed,
            "responses_total_incl_warmup": self.responses_total,
            "queued_for_connection": self.queued_measured,
            "max_queue": self.max_queue,
            "max_inflight": self.max_inflight,
            # Latency from the intended send time: what a client on a schedule experiences.
            "latency": summarize_ns(self.lat),
            # Latency from the actual send: the classic (coordinated-omission-prone) figure.
            "service_time": summarize_ns(self.svc),
            # The generator's own timing error: actual send - intended send.
            "send_lag": summarize_ns(lag_sorted),
            "sends_late_over_1ms": late,
            "generator_cpu_s": round(self.cpu_s, 4),
            "generator_cpu_us_per_request": round(self.cpu_s * 1e6 / max(1, self.responses_total + errors), 2),
            "wall_s": round(self.wall_s, 3),
        }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", required=True, help="http://127.0.0.1:PORT/path")
    p.add_argument("--rate", type=float, required=True, help="requests per second (constant)")
    p.add_argument("--duration", type=float, default=30.0, help="measured seconds (default 30)")
    p.add_argument("--warmup", type=float, default=2.0,
                   help="seconds at the same rate before measuring, not counted (default 2)")
    p.add_argument("--method", default="POST")
    p.add_argument("--body-file", help="request body (sent as application/json)")
    p.add_argument("--header", action="append", help="extra request header 'Name: value'")
    p.add_argument("--connections", type=int, default=16,
                   help="keep-alive connections opened up front (default 16)")
    p.add_argument("--max-connections", type=int, default=256,
                   help="upper bound when all are busy (default 256)")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="a request not answered this long after its intended time is an error")
    p.add_argument("--start-delay", type=float, default=0.1)
    p.add_argument("--json", help="write the result here instead of stdout")
    p.add_argument("--version", action="version", version=VERSION)
    p.add_argument("--allow-non-loopback", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.rate <= 0 or args.rate > 100000:
        p.error("--rate must be in (0, 100000]")
    if args.duration <= 0 or args.duration > 3600 or args.warmup < 0:
        p.error("--duration must be in (0, 3600], --warmup >= 0")

    g = Generator(args)
    g.run(args.start_delay)
    res = g.result(args)
    text = json.dumps(res, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    lat = res["latency"] or {}
    lag = res["send_lag"] or {}
    print("loadgen: %s rate=%g/s sent=%.1f/s ok=%d non2xx=%d errors=%d p50=%sms p99=%sms "
          "send-lag p99=%sms cpu=%.1fus/req timer=%s"
          % (args.url, args.rate, res["sent_rate"] or 0, res["ok_2xx"], res["non_2xx"],
             res["errors"], lat.get("p50_ms"), lat.get("p99_ms"), lag.get("p99_ms"),
             res["generator_cpu_us_per_request"], res["timer"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
