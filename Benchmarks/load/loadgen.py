#!/usr/bin/env python3
"""Open-loop, constant-rate HTTP/1.1 load generator (standard library only).

Request i is *intended* to be sent at  start + i / rate  whatever happened to earlier requests
(open loop). Latency is measured from that intended time to the last byte of the response, so a
stalled server is charged for the requests that queued up behind the stall (no coordinated
omission, as in wrk2 / HdrHistogram's "corrected" mode).

Several targets can share one run (--target NAME=URL, repeated): the schedule then rotates
between them in slices (--slice seconds; forward, then reversed, then forward...), so that slow
drifts of the machine (other tenants, frequency, a build starting) hit every target alike instead
of whichever happened to run last. The first --settle seconds of every slice are not measured.

How it keeps its own overhead small on a 2-core machine:
  * one thread, one epoll loop, per target a pool of pre-opened keep-alive connections
    (TCP_NODELAY), used last-in-first-out so that a few connections stay hot;
  * the send clock is a periodic Linux timerfd (nanosecond resolution, via ctypes), not an
    epoll timeout, which Python rounds up to whole milliseconds;
  * a minimal HTTP/1.1 response parser (Content-Length or chunked), garbage collector off.
It reports its own cost: CPU time per request and the send lag (actual send - intended send).

If all of a target's connections are busy when a request is due, the request waits in a FIFO for
the next free one (its latency still counts from the intended time) while new connections are
opened, up to --max-connections per target.

Output: one JSON document (--json, else stdout) and a one-line summary per target on stderr.
Exit status: 0 when the run completed (whatever the error count; the caller judges), 1 when a
target cannot be connected to at all, 2 on bad arguments.
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

VERSION = "2.0"

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT
EPOLLERR = select.EPOLLERR
EPOLLHUP = select.EPOLLHUP

now_ns = time.monotonic_ns  # CLOCK_MONOTONIC, the clock the timerfd uses


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
    fd is None when timerfd is unavailable (the caller then uses epoll timeouts, 1 ms grain)."""

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
    __slots__ = ("sock", "fd", "target", "buf", "intended", "measured", "phase", "sent", "hdr_end",
                 "status", "clen", "chunked", "close_after", "until_close", "chunk_pos",
                 "pending")

    def __init__(self, sock, target):
        self.sock = sock
        self.fd = sock.fileno()
        self.target = target
        self.buf = bytearray()
        self.intended = None  # intended send time of the in-flight request; None when idle
        self.measured = False
        self.phase = 0
        self.sent = 0
        self.pending = b""    # unsent tail of the request, when send() was partial
        self.reset_parser()

    def reset_parser(self):
        self.hdr_end = -1
        self.status = 0
        self.clen = -1
        self.chunked = False
        self.close_after = False
        self.until_close = False
        self.chunk_pos = 0


def _header_value(head, name):
    i = head.find(b"\r\n" + name + b":")
    if i < 0:
        return None
    j = head.find(b"\r\n", i + 2)
    return head[i + len(name) + 3: j if j >= 0 else len(head)].strip()


def _parse_headers(c):
    """Parse the status line and headers once the blank line is in the buffer. False while
    incomplete; ValueError on a malformed response."""
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
    v = _header_value(head, b"content-length")
    if v is not None:
        c.clen = int(v)
    v = _header_value(head, b"transfer-encoding")
    if v is not None and b"chunked" in v:
        c.chunked = True
        c.chunk_pos = c.hdr_end
    v = _header_value(head, b"connection")
    if v is not None and b"close" in v:
        c.close_after = True
    if head.startswith(b"http/1.0") and not (v is not None and b"keep-alive" in v):
        c.close_after = True
    if c.status in (204, 304) or 100 <= c.status < 200:
        c.clen = 0
        c.chunked = False
    elif not c.chunked and c.clen < 0:
        c.until_close = True  # body delimited by the server closing the connection
    return True


def _response_complete(c):
    """True when the whole response is in c.buf."""
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
            if size == 0:  # optional trailers, then an empty line
                return buf[eol + 2: eol + 4] == b"\r\n" or buf.find(b"\r\n\r\n", eol) >= 0
            nxt = eol + 2 + size + 2
            if len(buf) < nxt:
                c.chunk_pos = pos
                return False
            pos = c.chunk_pos = nxt
    if c.until_close:
        return False
    return len(c.buf) >= c.hdr_end + c.clen


# --------------------------------------------------------------------------------------------
# Statistics
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


def per_slice_summary(by_phase):
    p50s, p99s = [], []
    for vals in by_phase.values():
        if len(vals) < 20:
            continue
        s = sorted(vals)
        p50s.append(percentile(s, 50))
        p99s.append(percentile(s, 99))
    if not p50s:
        return None
    med = lambda v: round(sorted(v)[len(v) // 2] / 1e6, 4)  # noqa: E731
    return {"slices": len(p50s), "median_p50_ms": med(p50s), "median_p99_ms": med(p99s),
            "max_p99_ms": round(max(p99s) / 1e6, 4)}


# --------------------------------------------------------------------------------------------
# Targets and the generator
# --------------------------------------------------------------------------------------------
class Target:
    def __init__(self, name, url, args, body):
        u = urlsplit(url)
        if u.scheme != "http":
            raise SystemExit("loadgen: only http:// URLs are supported (%s)" % url)
        self.name, self.url = name, url
        self.host = u.hostname
        self.port = u.port or 80
        if self.host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit("loadgen: refusing a non-loopback target (%s)" % url)
        path = (u.path or "/") + ("?" + u.query if u.query else "")
        headers = [
            "%s %s HTTP/1.1" % (args.method, path),
            "Host: %s:%d" % (self.host, self.port),
            "User-Agent: gatehouse-loadgen/" + VERSION,
            "Accept: application/json",
        ]
        if body:
            headers.append("Content-Type: application/json")
        headers.append("Content-Length: %d" % len(body))
        headers.extend(args.header or [])
        self.request = ("\r\n".join(headers) + "\r\n\r\n").encode("latin-1") + body
        self.n_conns = 0
        self.idle = []                    # LIFO of idle connections
        self.queue = collections.deque()  # (intended, measured, phase) waiting for a connection
        # results (measured requests only, except the warmup_* counters)
        self.intended_measured = 0
        self.measured_ns = 0
        self.lat, self.svc, self.lag = [], [], []
        self.by_phase = collections.defaultdict(list)  # phase index -> latencies (ns)
        self.status = collections.Counter()
        self.errors = collections.Counter()
        self.warmup_done = self.warmup_failed = 0
        self.responses_total = 0
        self.queued_measured = 0
        self.max_queue = 0
        self.conns_opened = 0


class Generator:
    def __init__(self, args, targets):
        self.args = args
        self.targets = targets
        self.rate = args.rate
        self.period_ns = int(round(1e9 / args.rate))
        self.timeout_ns = int(args.timeout * 1e9)
        self.max_conns = max(args.max_connections, args.connections)
        self.ep = select.epoll()
        self.conns = {}  # fd -> Conn
        self.inflight = 0
        self.max_inflight = 0

    # -- the schedule -----------------------------------------------------------------------
    def build_phases(self, start):
        """[(target, begin_ns, end_ns, measure_from_ns or None)], back to back from start."""
        a = self.args
        phases, t = [], start
        warm = int(a.warmup * 1e9)
        if warm > 0:
            for tg in self.targets:
                phases.append((tg, t, t + warm, None))
                t += warm
        if len(self.targets) == 1:
            d = int(a.duration * 1e9)
            phases.append((self.targets[0], t, t + d, t))
            self.targets[0].measured_ns = d
            self.slices_per_target = 1
            return phases, t + d
        slice_ns = int(a.slice * 1e9)
        settle_ns = int(a.settle * 1e9)
        n = max(1, math.ceil(a.duration / (a.slice - a.settle) - 1e-9))
        self.slices_per_target = n
        for r in range(n):
            order = self.targets if r % 2 == 0 else list(reversed(self.targets))
            for tg in order:
                phases.append((tg, t, t + slice_ns, t + settle_ns))
                tg.measured_ns += slice_ns - settle_ns
                t += slice_ns
        return phases, t

    # -- connections ------------------------------------------------------------------------
    def open_conn(self, tg):
        s = socket.socket(socket.AF_INET6 if ":" in tg.host else socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(2.0)
        try:
            s.connect((tg.host, tg.port))
        except OSError:
            s.close()
            raise
        s.setblocking(False)
        c = Conn(s, tg)
        self.conns[c.fd] = c
        self.ep.register(c.fd, EPOLLIN)
        tg.n_conns += 1
        tg.conns_opened += 1
        return c

    def drop_conn(self, c):
        if self.conns.pop(c.fd, None) is None:
            return
        tg = c.target
        tg.n_conns -= 1
        try:
            self.ep.unregister(c.fd)
        except (OSError, ValueError):
            pass
        c.sock.close()
        if c in tg.idle:
            tg.idle.remove(c)

    def get_conn(self, tg):
        if tg.idle:
            return tg.idle.pop()
        if tg.n_conns < self.max_conns:
            try:
                return self.open_conn(tg)
            except OSError:
                tg.errors["connect"] += 1
        return None

    # -- requests ---------------------------------------------------------------------------
    def dispatch(self, tg, intended, measured, phase):
        if measured:
            tg.intended_measured += 1
        c = self.get_conn(tg)
        if c is None:
            tg.queue.append((intended, measured, phase))
            if len(tg.queue) > tg.max_queue:
                tg.max_queue = len(tg.queue)
            if measured:
                tg.queued_measured += 1
            return
        self.send(c, intended, measured, phase)

    def send(self, c, intended, measured, phase):
        c.intended = intended
        c.measured = measured
        c.phase = phase
        c.reset_parser()
        c.sent = now_ns()
        self.inflight += 1
        if self.inflight > self.max_inflight:
            self.max_inflight = self.inflight
        req = c.target.request
        try:
            n = c.sock.send(req)
        except OSError:
            self.fail(c, "write")
            return
        if n < len(req):
            c.pending = req[n:]
            self.ep.modify(c.fd, EPOLLIN | EPOLLOUT)

    @staticmethod
    def count_error(tg, measured, kind):
        if measured:
            tg.errors[kind] += 1
        else:
            tg.warmup_failed += 1

    def fail(self, c, kind):
        """The in-flight request on c failed: count it, replace the connection."""
        tg = c.target
        if c.intended is not None:
            self.inflight -= 1
            self.count_error(tg, c.measured, kind)
            c.intended = None
        self.drop_conn(c)
        self.release(tg, None)

    def release(self, tg, c):
        """c (or a new connection when c is None) is free: serve tg's queue or park it."""
        if tg.queue:
            if c is None:
                c = self.get_conn(tg)
                if c is None:
                    return
            intended, measured, phase = tg.queue.popleft()
            self.send(c, intended, measured, phase)
        elif c is not None:
            tg.idle.append(c)

    def complete(self, c, t, reuse):
        tg = c.target
        self.inflight -= 1
        tg.responses_total += 1
        if c.measured:
            tg.lat.append(t - c.intended)
            tg.by_phase[c.phase].append(t - c.intended)
            tg.svc.append(t - c.sent)
            tg.lag.append(c.sent - c.intended)
            tg.status[c.status] += 1
        else:
            tg.warmup_done += 1
            if not 200 <= c.status < 300:
                tg.warmup_failed += 1
        c.intended = None
        del c.buf[:]
        if reuse:
            self.release(tg, c)
        else:
            self.drop_conn(c)
            self.release(tg, None)

    def on_readable(self, c):
        try:
            data = c.sock.recv(262144)
        except BlockingIOError:
            return
        except OSError:
            self.fail(c, "read")
            return
        if not data:  # the server closed the connection
            if c.intended is not None and c.hdr_end >= 0 and c.until_close:
                self.complete(c, now_ns(), reuse=False)
            elif c.intended is not None:
                self.fail(c, "read")
            else:
                self.drop_conn(c)  # an idle keep-alive connection was closed: forget it
            return
        if c.intended is None:
            c.target.errors["protocol"] += 1  # bytes nobody asked for
            self.drop_conn(c)
            return
        c.buf += data
        try:
            done = _response_complete(c)
        except ValueError:
            self.fail(c, "protocol")
            return
        if done:
            self.complete(c, now_ns(), reuse=not c.close_after)

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
        for tg in self.targets:
            while tg.queue and tg.queue[0][0] < limit:
                self.count_error(tg, tg.queue.popleft()[1], "timeout")

    # -- main loop --------------------------------------------------------------------------
    def run(self):
        for tg in self.targets:
            for _ in range(self.args.connections):
                try:
                    tg.idle.append(self.open_conn(tg))
                except OSError:
                    tg.errors["connect"] += 1
            if not tg.n_conns:
                raise SystemExit("loadgen: cannot connect to %s (%s)" % (tg.name, tg.url))
            tg.idle.reverse()

        gc.collect()
        gc.disable()
        start = now_ns() + int(self.args.start_delay * 1e9)
        phases, end = self.build_phases(start)
        self.phases = len(phases)
        total_n = (end - start) // self.period_ns
        timer = PeriodicTimer(start, self.period_ns)
        self.timer_kind = timer.kind
        if timer.fd is not None:
            self.ep.register(timer.fd, EPOLLIN)
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        nxt = 0        # index of the next request
        ph = 0         # index of its phase
        next_check = start
        deadline = end + self.timeout_ns + 1_000_000_000
        poll, conns, timer_fd, period = self.ep.poll, self.conns, timer.fd, self.period_ns
        while True:
            t = now_ns()
            if t > deadline:
                break
            if nxt < total_n:
                wait = 0.05 if timer_fd is not None else max(0.0, (start + nxt * period - t) / 1e9)
            elif self.inflight == 0 and not any(tg.queue for tg in self.targets):
                break
            else:
                wait = 0.05
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
            while nxt < total_n:
                due = start + nxt * period
                if due > t:
                    break
                while due >= phases[ph][2]:
                    ph += 1
                tg, _, _, mfrom = phases[ph]
                self.dispatch(tg, due, mfrom is not None and due >= mfrom, ph)
                nxt += 1
            if t >= next_check:
                self.check_timeouts(t)
                next_check = t + 20_000_000
        for c in list(self.conns.values()):  # still outstanding at the deadline: timed out
            if c.intended is not None:
                self.fail(c, "timeout")
        for tg in self.targets:
            while tg.queue:
                self.count_error(tg, tg.queue.popleft()[1], "timeout")
        self.not_sent = total_n - nxt
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu_s = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        self.wall_s = (now_ns() - start) / 1e9
        gc.enable()
        timer.close()
        for c in list(self.conns.values()):
            self.drop_conn(c)

    def result(self):
        a = self.args
        out = {}
        all_requests = 0
        for tg in self.targets:
            ok = sum(n for s, n in tg.status.items() if 200 <= s < 300)
            non2xx = sum(n for s, n in tg.status.items() if not 200 <= s < 300)
            errors = sum(tg.errors.values())
            all_requests += tg.responses_total + errors + tg.warmup_failed
            secs = tg.measured_ns / 1e9
            out[tg.name] = {
                "url": tg.url,
                "measured_s": round(secs, 3),
                "requests_intended": tg.intended_measured,
                "sent_rate": round(tg.intended_measured / secs, 2) if secs else None,
                "responses": ok + non2xx,
                "ok_2xx": ok,
                "non_2xx": non2xx,
                "errors": errors,
                "error_kinds": dict(tg.errors),
                "status_counts": {str(k): v for k, v in sorted(tg.status.items())},
                "failure_ratio": (round((non2xx + errors) / tg.intended_measured, 6)
                                  if tg.intended_measured else None),
                "warmup_responses": tg.warmup_done,
                "warmup_failures": tg.warmup_failed,
                "responses_total_incl_warmup": tg.responses_total,
                "queued_for_connection": tg.queued_measured,
                "max_queue": tg.max_queue,
                "connections_opened": tg.conns_opened,
                # From the intended send time: what a client on a schedule experiences.
                "latency": summarize_ns(tg.lat),
                # From the actual send: the classic (coordinated-omission-prone) figure.
                "service_time": summarize_ns(tg.svc),
                # The generator's own timing error: actual send - intended send.
                "send_lag": summarize_ns(tg.lag),
                "sends_late_over_1ms": sum(1 for v in tg.lag if v > 1_000_000),
                # Robust to a burst of other work landing on one slice: the median over slices
                # of each slice's own percentiles.
                "per_slice": per_slice_summary(tg.by_phase) if len(self.targets) > 1 else None,
            }
        return {
            "tool": "loadgen.py",
            "version": VERSION,
            "python": sys.version.split()[0],
            "timer": self.timer_kind,
            "rate": self.rate,
            "duration_per_target_s": a.duration,
            "warmup_per_target_s": a.warmup,
            "slice_s": a.slice if len(self.targets) > 1 else None,
            "settle_s": a.settle if len(self.targets) > 1 else None,
            "slices_per_target": self.slices_per_target,
            "rotation": [tg.name for tg in self.targets],
            "connections_per_target": a.connections,
            "max_connections_per_target": self.max_conns,
            "max_inflight": self.max_inflight,
            "not_sent": self.not_sent,
            "generator_cpu_s": round(self.cpu_s, 4),
            "generator_cpu_us_per_request": round(self.cpu_s * 1e6 / max(1, all_requests), 2),
            "generator_cpu_percent_of_one_core": round(100.0 * self.cpu_s / self.wall_s, 2) if self.wall_s else None,
            "wall_s": round(self.wall_s, 3),
            "targets": out,
        }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--url", help="a single target: http://127.0.0.1:PORT/path")
    p.add_argument("--target", action="append", metavar="NAME=URL",
                   help="a target in the rotation (repeat; order kept)")
    p.add_argument("--rate", type=float, required=True, help="requests per second (constant)")
    p.add_argument("--duration", type=float, default=30.0,
                   help="measured seconds per target (default 30; rounded up to whole slices)")
    p.add_argument("--warmup", type=float, default=2.0,
                   help="unmeasured seconds per target before measuring (default 2)")
    p.add_argument("--slice", type=float, default=1.0,
                   help="seconds per target before rotating to the next one (default 1)")
    p.add_argument("--settle", type=float, default=0.2,
                   help="unmeasured seconds at the start of each slice (default 0.2)")
    p.add_argument("--method", default="POST")
    p.add_argument("--body-file", help="request body (sent as application/json)")
    p.add_argument("--header", action="append", help="extra request header 'Name: value'")
    p.add_argument("--connections", type=int, default=16,
                   help="keep-alive connections per target opened up front (default 16)")
    p.add_argument("--max-connections", type=int, default=256,
                   help="per target, when all are busy (default 256)")
    p.add_argument("--timeout", type=float, default=5.0,
                   help="a request not answered this long after its intended time is an error")
    p.add_argument("--start-delay", type=float, default=0.1)
    p.add_argument("--json", help="write the result here instead of stdout")
    p.add_argument("--version", action="version", version=VERSION)
    args = p.parse_args(argv)
    if args.rate <= 0 or args.rate > 100000:
        p.error("--rate must be in (0, 100000]")
    if not 0 < args.duration <= 3600 or args.warmup < 0:
        p.error("--duration must be in (0, 3600], --warmup >= 0")
    if not 0 <= args.settle < args.slice:
        p.error("--settle must be >= 0 and shorter than --slice")
    specs = []
    if args.url:
        specs.append(("target", args.url))
    for t in args.target or []:
        name, sep, url = t.partition("=")
        if not sep or not name:
            p.error("--target wants NAME=URL")
        specs.append((name, url))
    if not specs:
        p.error("give --url or --target")
    if len({n for n, _ in specs}) != len(specs):
        p.error("target names must differ")
    body = open(args.body_file, "rb").read() if args.body_file else b""
    targets = [Target(n, u, args, body) for n, u in specs]

    g = Generator(args, targets)
    g.run()
    res = g.result()
    text = json.dumps(res, indent=2)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    else:
        print(text)
    for name, r in res["targets"].items():
        lat = r["latency"] or {}
        lag = r["send_lag"] or {}
        print("loadgen: %-14s rate=%g/s sent=%.1f/s ok=%d non2xx=%d errors=%d p50=%sms p99=%sms "
              "send-lag p99=%sms" % (name, args.rate, r["sent_rate"] or 0, r["ok_2xx"], r["non_2xx"],
                                     r["errors"], lat.get("p50_ms"), lat.get("p99_ms"),
                                     lag.get("p99_ms")), file=sys.stderr)
    print("loadgen: generator cpu=%.1fus/req (%.1f%% of a core), timer=%s, %d slices/target"
          % (res["generator_cpu_us_per_request"], res["generator_cpu_percent_of_one_core"] or 0,
             res["timer"], res["slices_per_target"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
