#!/usr/bin/env python3
"""Helpers for run.sh (standard library only).

  bench.py ports N                      N free TCP ports on 127.0.0.1, one per line
  bench.py render TEMPLATE OUT K=V...   copy TEMPLATE to OUT replacing @K@ (or K, for yaml) by V
  bench.py smoke URL BODYFILE [HDR...]  POST once; check 200 + a chat.completion with usage
  bench.py wait-http URL SECONDS        wait until GET URL answers 200
  bench.py upstream-count URL           the request counter of nginx stub_status
  bench.py cputicks PID...              utime+stime (clock ticks) of the PIDs and descendants
  bench.py mem PID...                   {"vmrss_kb","vmhwm_kb"} summed over the PIDs and descendants
  bench.py parse-wrk OUTFILE JSONOUT    pull the WRKJSON line out of wrk's output
  bench.py report ...                   combine the stage results into Markdown + JSON
"""

import json
import math
import os
import socket
import sys
import time
import urllib.error
import urllib.request


# ---------------------------------------------------------------------------- small helpers
def cmd_ports(n):
    socks = []
    for _ in range(int(n)):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    for s in socks:
        print(s.getsockname()[1])
    for s in socks:
        s.close()


def cmd_render(template, out, *pairs):
    text = open(template).read()
    for kv in pairs:
        k, v = kv.split("=", 1)
        if k.startswith("@"):
            text = text.replace(k, v)
        else:
            text = text.replace(k, v)
    open(out, "w").write(text)


def _no_proxy_opener():
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def cmd_smoke(url, body_file, *headers):
    body = open(body_file, "rb").read()
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    for h in headers:
        k, v = h.split(":", 1)
        req.add_header(k.strip(), v.strip())
    try:
        with _no_proxy_opener().open(req, timeout=10) as r:
            status, data = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, data = e.code, e.read()
    except OSError as e:
        print("smoke: %s: %s" % (url, e), file=sys.stderr)
        return 1
    problems = []
    if status != 200:
        problems.append("status %d" % status)
    try:
        doc = json.loads(data)
        if doc.get("object") != "chat.completion":
            problems.append("object is %r, not chat.completion" % doc.get("object"))
        usage = doc.get("usage") or {}
        if usage.get("total_tokens") != 32:
            problems.append("usage.total_tokens is %r, not 32" % usage.get("total_tokens"))
        if not (doc.get("choices") or [{}])[0].get("message", {}).get("content"):
            problems.append("no choices[0].message.content")
    except (ValueError, AttributeError, IndexError) as e:
        problems.append("body is not chat.completion JSON (%s)" % e)
    if problems:
        print("smoke: %s: %s; body: %s" % (url, "; ".join(problems), data[:500]), file=sys.stderr)
        return 1
    return 0


def cmd_wait_http(url, seconds):
    deadline = time.monotonic() + float(seconds)
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with _no_proxy_opener().open(url, timeout=2) as r:
                if r.status == 200:
                    return 0
                last = "status %d" % r.status
        except urllib.error.HTTPError as e:
            last = "status %d" % e.code
        except OSError as e:
            last = str(e)
        time.sleep(0.2)
    print("wait-http: %s did not answer 200 within %ss (%s)" % (url, seconds, last),
          file=sys.stderr)
    return 1


def cmd_upstream_count(url):
    with _no_proxy_opener().open(url, timeout=5) as r:
        lines = r.read().decode().splitlines()
    # "Active connections: N", "server accepts handled requests", " A H R", ...
    print(int(lines[2].split()[2]))
    return 0


def _descendants(pid):
    out, todo = [], [int(pid)]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, task)) as f:
                    todo.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def cmd_cputicks(*pids):
    total = 0
    for pid in pids:
        for p in _descendants(pid):
            try:
                stat = open("/proc/%d/stat" % p).read()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    print(total)
    return 0


def cmd_mem(*pids):
    rss = hwm = 0
    procs = []
    for pid in pids:
        for p in _descendants(pid):
            try:
                st = open("/proc/%d/status" % p).read().splitlines()
            except OSError:
                continue
            d = {}
            for line in st:
                k, _, v = line.partition(":")
                d[k] = v.strip()
            r = int(d.get("VmRSS", "0 kB").split()[0])
            h = int(d.get("VmHWM", "0 kB").split()[0])
            rss += r
            hwm += h
            procs.append({"pid": p, "name": d.get("Name"), "vmrss_kb": r, "vmhwm_kb": h})
    print(json.dumps({"vmrss_kb": rss, "vmhwm_kb": hwm, "processes": procs}))
    return 0


def cmd_parse_wrk(out_file, json_out):
    for line in open(out_file, errors="replace"):
        if line.startswith("WRKJSON "):
            doc = json.loads(line[len("WRKJSON "):])
            open(json_out, "w").write(json.dumps(doc, indent=2) + "\n")
            return 0
    print("parse-wrk: no WRKJSON line in %s" % out_file, file=sys.stderr)
    return 1


# ---------------------------------------------------------------------------- the report
def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _fmt(v, nd=3):
    if v is None:
        return "—"
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return "—"
    if isinstance(v, float):
        return ("%%.%df" % nd) % v
    return str(v)


def _signed(v, nd=3):
    if v is None:
        return "—"
    return ("%%+.%df" % nd) % v


def _mib(kb):
    return None if kb is None else round(kb / 1024.0, 1)


def cmd_report(results_dir, json_out, max_error_rate):
    max_error_rate = float(max_error_rate)
    env = _load(os.path.join(results_dir, "env.json")) or {}
    stages = []
    tsv = os.path.join(results_dir, "stages.tsv")
    if os.path.exists(tsv):
        for line in open(tsv):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 9:
                continue
            sid, kind, target, rate, rc, tticks, uticks, up_delta, note = parts[:9]
            stages.append({
                "id": sid, "kind": kind, "target": target,
                "rate": float(rate) if rate not in ("", "-") else None,
                "rc": int(rc), "target_cpu_ticks": None if tticks == "-" else int(tticks),
                "upstream_cpu_ticks": None if uticks == "-" else int(uticks),
                "upstream_requests": None if up_delta == "-" else int(up_delta),
                "note": note,
                "result": _load(os.path.join(results_dir, sid + ".json")),
            })
    clk = float(env.get("clk_tck") or 100)
    failures = list(env.get("failures") or [])
    fpath = os.path.join(results_dir, "failures.txt")
    if os.path.exists(fpath):
        failures += [l.strip() for l in open(fpath) if l.strip()]

    # ---- per-stage figures
    for st in stages:
        r = st["result"]
        st["ok"] = True
        if r is None:
            st["ok"] = False
            failures.append("%s: no result (exit %d)" % (st["id"], st["rc"]))
            continue
        if st["kind"] in ("fixed", "calib") or st["kind"] == "aa":
            total = r["requests_intended"]
            bad = r["non_2xx"] + r["errors"]
            ok = r["ok_2xx"]
            all_resp = r.get("responses_total_incl_warmup") or total
        else:  # wrk
            e = r["errors"]
            total = r["requests"]
            bad = e["status"] + e["connect"] + e["read"] + e["write"] + e["timeout"]
            ok = total - e["status"]
            all_resp = total
            r["requests_per_s"] = round(total / (r["duration_us"] / 1e6), 1) if r["duration_us"] else None
            r["non_2xx"] = e["status"]
            r["errors_total"] = e["connect"] + e["read"] + e["write"] + e["timeout"]
        st["total"] = total
        st["bad"] = bad
        st["failure_ratio"] = (bad / total) if total else 1.0
        if st["rc"] != 0:
            st["ok"] = False
            failures.append("%s: tool exited %d" % (st["id"], st["rc"]))
        if total == 0 or st["failure_ratio"] > max_error_rate:
            st["ok"] = False
            failures.append("%s: %d of %d requests failed (non-2xx or error), limit %.3f%%"
                            % (st["id"], bad, total, max_error_rate * 100))
        if st["target_cpu_ticks"] is not None and all_resp:
            st["target_cpu_us_per_request"] = round(st["target_cpu_ticks"] / clk * 1e6 / all_resp, 1)
        if st["upstream_cpu_ticks"] is not None and all_resp:
            st["upstream_cpu_us_per_request"] = round(st["upstream_cpu_ticks"] / clk * 1e6 / all_resp, 1)
        # The upstream must have seen (at least) every successful request.
        if st["upstream_requests"] is not None and st["kind"] in ("fixed", "aa", "max"):
            st["upstream_requests_vs_ok"] = round(st["upstream_requests"] / all_resp, 4) if all_resp else None
            if all_resp and st["upstream_requests"] < 0.99 * (ok if st["kind"] == "max" else all_resp - bad):
                st["ok"] = False
                failures.append("%s: upstream saw %d requests for %d answered: the target did not "
                                "forward them" % (st["id"], st["upstream_requests"], all_resp))

    by_id = {s["id"]: s for s in stages}
    targets = [t for t in ("direct", "nginx", "gatehouse") if any(s["target"] == t for s in stages)]
    rates = sorted({s["rate"] for s in stages if s["kind"] == "fixed" and s["rate"]})

    def lat(sid, key):
        s = by_id.get(sid)
        if not s or not s.get("result") or not s["result"].get("latency"):
            return None
        return s["result"]["latency"][key]

    summary = {"fixed": {}, "max": {}, "memory": env.get("memory", {}), "generator": {}}
    for rate in rates:
        rk = "%g" % rate
        d1 = "fixed-direct-%s" % rk
        d2 = "aa-direct-%s" % rk
        row = {}
        base = {}
        for key in ("p50_ms", "p99_ms"):
            a, b = lat(d1, key), lat(d2, key)
            vals = [v for v in (a, b) if v is not None]
            base[key] = sum(vals) / len(vals) if vals else None
            row.setdefault("direct_noise", {})[key] = (round(abs(a - b), 4)
                                                       if a is not None and b is not None else None)
        for t in targets:
            sid = "fixed-%s-%s" % (t, rk)
            s = by_id.get(sid)
            if not s:
                continue
            r = s.get("result") or {}
            l = r.get("latency") or {}
            ent = {
                "stage": sid,
                "sent_rate": r.get("sent_rate"),
                "p50_ms": l.get("p50_ms"), "p90_ms": l.get("p90_ms"), "p99_ms": l.get("p99_ms"),
                "p999_ms": l.get("p999_ms"), "max_ms": l.get("max_ms"), "mean_ms": l.get("mean_ms"),
                "service_time_p50_ms": (r.get("service_time") or {}).get("p50_ms"),
                "service_time_p99_ms": (r.get("service_time") or {}).get("p99_ms"),
                "non_2xx": r.get("non_2xx"), "errors": r.get("errors"),
                "error_kinds": r.get("error_kinds"),
                "target_cpu_us_per_request": s.get("target_cpu_us_per_request"),
                "upstream_cpu_us_per_request": s.get("upstream_cpu_us_per_request"),
                "queued_for_connection": r.get("queued_for_connection"),
                "ok": s.get("ok"),
            }
            if t != "direct":
                for key in ("p50_ms", "p99_ms"):
                    ent["added_" + key] = (round(l[key] - base[key], 4)
                                           if l.get(key) is not None and base[key] is not None else None)
            row[t] = ent
        if d2 in by_id:
            r = by_id[d2].get("result") or {}
            l = r.get("latency") or {}
            row["direct_repeat"] = {"stage": d2, "p50_ms": l.get("p50_ms"), "p99_ms": l.get("p99_ms"),
                                    "non_2xx": r.get("non_2xx"), "errors": r.get("errors"),
                                    "ok": by_id[d2].get("ok")}
        row["direct_baseline"] = base
        summary["fixed"][rk] = row
        gen = {}
        for sid in (d1, d2) + tuple("fixed-%s-%s" % (t, rk) for t in targets):
            r = (by_id.get(sid) or {}).get("result")
            if r:
                gen[sid] = {"cpu_us_per_request": r.get("generator_cpu_us_per_request"),
                            "send_lag_p50_ms": (r.get("send_lag") or {}).get("p50_ms"),
                            "send_lag_p99_ms": (r.get("send_lag") or {}).get("p99_ms"),
                            "sends_late_over_1ms": r.get("sends_late_over_1ms"),
                            "timer": r.get("timer")}
        summary["generator"][rk] = gen
    calib = by_id.get("calib-wrk-c1-direct")
    if calib and calib.get("result"):
        summary["generator"]["wrk_c1_direct_latency_us"] = calib["result"]["latency_us"]
    dmax = (by_id.get("max-direct") or {}).get("result") or {}
    for t in targets:
        s = by_id.get("max-%s" % t)
        if not s or not s.get("result"):
            continue
        r = s["result"]
        lu = r["latency_us"]
        summary["max"][t] = {
            "stage": s["id"],
            "requests_per_s": r.get("requests_per_s"),
            "percent_of_direct": (round(100.0 * r["requests_per_s"] / dmax["requests_per_s"], 1)
                                  if dmax.get("requests_per_s") else None),
            "p50_ms": lu["p50"] / 1000.0, "p99_ms": lu["p99"] / 1000.0,
            "non_2xx": r.get("non_2xx"), "errors": r.get("errors_total"),
            "error_kinds": r["errors"],
            "target_cpu_us_per_request": s.get("target_cpu_us_per_request"),
            "upstream_cpu_us_per_request": s.get("upstream_cpu_us_per_request"),
            "ok": s.get("ok"),
        }

    passed = not failures
    doc = {"passed": passed, "failures": failures, "environment": env, "summary": summary,
           "max_error_rate": max_error_rate,
           "stages": [{k: v for k, v in s.items()} for s in stages]}
    if json_out:
        with open(json_out, "w") as f:
            f.write(json.dumps(doc, indent=2) + "\n")

    # ---- Markdown
    o = []
    w = o.append
    w("## Gatehouse load benchmark — %s" % env.get("date", "?"))
    w("")
    w("- Machine: **%s CPU cores in total** (%s), kernel %s, %s GiB RAM. Everything shares these "
      "cores: the mock upstream (nginx, 1 worker), the proxy under test (nginx with 1 worker, or "
      "Gatehouse), and the load generator." % (env.get("nproc"), env.get("cpu_model"),
                                                env.get("kernel"), env.get("mem_gib")))
    w("- Load average before the run: %s (anything well above 0 means other work was running and the "
      "figures are noisier)." % env.get("loadavg_start"))
    w("- Tools: %s; %s; loadgen.py %s (Python %s, timer: %s); curl-free checks via Python." % (
        env.get("nginx_version"), env.get("wrk_version"), env.get("loadgen_version"),
        env.get("python_version"), env.get("loadgen_timer", "?")))
    if env.get("gatehouse"):
        g = env["gatehouse"]
        w("- Gatehouse: `%s` (%s, sha256 %s…)." % (g.get("path"), g.get("version") or "version unknown",
                                                  (g.get("sha256") or "?")[:12]))
    w("- Fixed-rate runs: %ss measured after %ss warm-up, open loop, latency from the intended send "
      "time; max-throughput runs: wrk `-t%s -c%s -d%ss`." % (
          env.get("duration_fixed"), env.get("warmup"), env.get("wrk_threads"),
          env.get("wrk_connections"), env.get("duration_max")))
    w("")
    w("### Latency at fixed request rates")
    w("")
    w("| target | rate (req/s) | sent (req/s) | p50 (ms) | p99 (ms) | added p50 (ms) | added p99 (ms) "
      "| target CPU (µs/req) | non-2xx | errors |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rk, row in summary["fixed"].items():
        for t in targets:
            e = row.get(t)
            if not e:
                continue
            w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                t, rk, _fmt(e["sent_rate"], 1), _fmt(e["p50_ms"]), _fmt(e["p99_ms"]),
                _signed(e.get("added_p50_ms")) if t != "direct" else "(baseline)",
                _signed(e.get("added_p99_ms")) if t != "direct" else "(baseline)",
                _fmt(e["target_cpu_us_per_request"], 1) if t != "direct" else "—",
                _fmt(e["non_2xx"]), _fmt(e["errors"])))
        rep = row.get("direct_repeat")
        if rep:
            n = row["direct_noise"]
            w("| direct (repeat) | %s | | %s | %s | noise %s | noise %s | — | %s | %s |" % (
                rk, _fmt(rep["p50_ms"]), _fmt(rep["p99_ms"]), _fmt(n["p50_ms"]), _fmt(n["p99_ms"]),
                _fmt(rep["non_2xx"]), _fmt(rep["errors"])))
    w("")
    w("Added = target minus the direct baseline at the same rate (the mean of the direct run before "
      "and the repeat after the targets). *noise* = |direct − direct (repeat)|: differences smaller "
      "than that are not resolved.")
    w("")
    if summary["max"]:
        w("### Maximum throughput (closed loop)")
        w("")
        w("| target | req/s | % of direct | p50 (ms) | p99 (ms) | target CPU (µs/req) | non-2xx | errors |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|")
        for t in targets:
            e = summary["max"].get(t)
            if not e:
                continue
            w("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                t, _fmt(e["requests_per_s"], 0), _fmt(e["percent_of_direct"], 1),
                _fmt(e["p50_ms"]), _fmt(e["p99_ms"]),
                _fmt(e["target_cpu_us_per_request"], 1) if t != "direct" else "—",
                _fmt(e["non_2xx"]), _fmt(e["errors"])))
        w("")
    mem = env.get("memory") or {}
    if mem:
        w("### Memory (from /proc/PID/status, read after all runs)")
        w("")
        w("| process | RSS after start (MiB) | RSS at end (MiB) | peak RSS, VmHWM (MiB) |")
        w("|---|---:|---:|---:|")
        for name, m in mem.items():
            w("| %s | %s | %s | %s |" % (name, _fmt(_mib(m.get("start_vmrss_kb")), 1),
                                         _fmt(_mib(m.get("end_vmrss_kb")), 1),
                                         _fmt(_mib(m.get("end_vmhwm_kb")), 1)))
        w("")
    w("### The load generator's own cost")
    w("")
    w("| stage | generator CPU (µs/req) | send lag p50 (ms) | send lag p99 (ms) | sends > 1 ms late |")
    w("|---|---:|---:|---:|---:|")
    for rk, gen in summary["generator"].items():
        if not isinstance(gen, dict) or "p50" in gen:
            continue
        for sid, g in gen.items():
            w("| %s | %s | %s | %s | %s |" % (sid, _fmt(g["cpu_us_per_request"], 1),
                                             _fmt(g["send_lag_p50_ms"], 4), _fmt(g["send_lag_p99_ms"], 4),
                                             _fmt(g["sends_late_over_1ms"])))
    c1 = summary["generator"].get("wrk_c1_direct_latency_us")
    if c1:
        w("")
        w("For scale: wrk with one connection, closed loop, direct to the upstream: p50 %s ms, "
          "p99 %s ms (a C client's round trip when nothing is idle)." % (
              _fmt(c1["p50"] / 1000.0), _fmt(c1["p99"] / 1000.0)))
    w("")
    if passed:
        w("**Result: PASS** — every stage answered with at most %.3f%% non-2xx/errors." % (max_error_rate * 100))
    else:
        w("**Result: FAIL**")
        w("")
        for f in failures:
            w("- %s" % f)
    print("\n".join(o))
    return 0 if passed else 1


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {
        "ports": cmd_ports, "render": cmd_render, "smoke": cmd_smoke, "wait-http": cmd_wait_http,
        "upstream-count": cmd_upstream_count, "cputicks": cmd_cputicks, "mem": cmd_mem,
        "parse-wrk": cmd_parse_wrk, "report": cmd_report,
    }.get(cmd)
    if fn is None:
        print(__doc__, file=sys.stderr)
        return 2
    return fn(*args) or 0


if __name__ == "__main__":
    sys.exit(main())
