#!/usr/bin/env python3
"""Helpers for run.sh (standard library only).

  bench.py ports N                      N free TCP ports on 127.0.0.1, one per line
  bench.py render TEMPLATE OUT K=V...   copy TEMPLATE to OUT replacing @K@ (or K, for yaml) by V
  bench.py smoke URL BODYFILE [HDR...]  POST once; check 200 + a chat.completion with usage
  bench.py wait-http URL SECONDS [PID]  wait until GET URL answers 200 (while PID lives)
  bench.py upstream-count URL           the request counter of nginx stub_status
  bench.py cputicks PID...              utime+stime (clock ticks) of the PIDs and descendants
  bench.py ticks NAME=PID...            the same per name, as "name:ticks,..."
  bench.py foreign-ticks PID...         CPU ticks of all processes outside these PIDs' trees
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
        text = text.replace(k, v)
    import re
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        print("render: %s: placeholders left: %s" % (template, sorted(set(left))), file=sys.stderr)
        return 1
    open(out, "w").write(text)
    return 0


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


def cmd_create_key(base_url, admin_token):
    """Creates the benchmark's virtual key (high rate limit, large budget) and prints its secret."""
    body = json.dumps({"alias": "bench", "rpm": 100000000, "budget": {"amount_usd": "1000000", "period": "day"}}).encode()
    req = urllib.request.Request(base_url.rstrip("/") + "/api/v1/keys", data=body, method="POST",
                                 headers={"Authorization": "Bearer " + admin_token, "Content-Type": "application/json"})
    with _no_proxy_opener().open(req, timeout=10) as r:
        print(json.load(r)["key"])


def _alive(pid):
    try:
        stat = open("/proc/%d/stat" % int(pid)).read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def cmd_wait_http(url, seconds, pid=None):
    """Wait for GET url -> 200; give up early when process `pid` has exited."""
    deadline = time.monotonic() + float(seconds)
    last = "no answer"
    while time.monotonic() < deadline:
        if pid and not _alive(pid):
            print("wait-http: process %s exited before %s answered" % (pid, url), file=sys.stderr)
            return 1
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


def _tree_ticks(pid):
    """utime + stime of PID and its descendants, in clock ticks."""
    total = 0
    for p in _descendants(pid):
        try:
            stat = open("/proc/%d/stat" % p).read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total


def cmd_cputicks(*pids):
    print(sum(_tree_ticks(pid) for pid in pids))
    return 0


def cmd_ticks(*named):
    """NAME=PID... -> 'name:ticks,...' (utime+stime of each PID and its descendants)."""
    out = []
    for kv in named:
        name, _, pid = kv.partition("=")
        out.append("%s:%d" % (name, _tree_ticks(pid)))
    print(",".join(out) or "-")
    return 0


def cmd_foreign_ticks(*exclude):
    """CPU ticks (utime+stime+cutime+cstime) summed over every user-space process that is not one
    of `exclude` or their descendants. The difference of two readings is the CPU that other work
    on the machine used in between (a reaped child's time moves into its parent's cutime, so
    short-lived compiler processes are counted too). Kernel threads are left out."""
    mine = set()
    for pid in exclude:
        mine.update(_descendants(pid))
    total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid in mine or pid == 2:
            continue
        try:
            stat = open("/proc/%d/stat" % pid).read()
        except OSError:
            continue
        f = stat[stat.rindex(")") + 2:].split()
        if int(f[1]) == 2:  # ppid 2: a kernel thread
            continue
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
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


def _run(cmd):
    import subprocess
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        return p.stdout.decode(errors="replace").strip()
    except (OSError, subprocess.SubprocessError):
        return None


def cmd_env(out, *pairs):
    """Describe the machine and the run; KEY=VALUE pairs (numbers parsed) are added as given."""
    import platform
    env = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "nproc": os.cpu_count(),
        "nproc_available": len(os.sched_getaffinity(0)),
        "kernel": " ".join(platform.uname()[i] for i in (0, 2, 4)),
        "loadavg_start": open("/proc/loadavg").read().split()[:3],
        "clk_tck": os.sysconf("SC_CLK_TCK"),
        "python_version": platform.python_version(),
    }
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                env["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                env["mem_gib"] = round(int(line.split()[1]) / 1048576.0, 1)
    except OSError:
        pass
    v = _run(["nginx", "-v"])
    env["nginx_version"] = v.replace("nginx version: ", "") if v else None
    v = _run(["wrk", "-v"])
    env["wrk_version"] = v.splitlines()[0].split(" Copyright")[0] if v else None
    for kv in pairs:
        k, val = kv.split("=", 1)
        for conv in (int, float):
            try:
                val = conv(val)
                break
            except ValueError:
                pass
        env[k] = val
    with open(out, "w") as f:
        f.write(json.dumps(env, indent=2) + "\n")
    return 0


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


def _median(vals):
    vals = sorted(v for v in vals if v is not None)
    if not vals:
        return None
    n = len(vals)
    return vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2.0


def _parse_ticks(text):
    out = {}
    for part in (text or "").split(","):
        name, sep, val = part.partition(":")
        if sep and val.strip().lstrip("-").isdigit():
            out[name] = int(val)
    return out


def _read_stages(results_dir):
    """One entry per stage (a run of one load tool), from stages.tsv."""
    stages = []
    tsv = os.path.join(results_dir, "stages.tsv")
    if not os.path.exists(tsv):
        return stages
    for line in open(tsv):
        p = line.rstrip("\n").split("\t")
        if len(p) < 12:
            continue
        before, after = _parse_ticks(p[5]), _parse_ticks(p[6])
        ticks = {k: after[k] - before[k] for k in after if k in before}
        up = None
        if p[7].isdigit() and p[8].isdigit():
            up = int(p[8]) - int(p[7]) - 1  # minus the counter read itself
        stages.append({
            "id": p[0], "kind": p[1], "targets": p[2].split(","),
            "rate": None if p[3] in ("", "-") else float(p[3]),
            "rc": int(p[4]), "cpu_ticks": ticks, "upstream_requests": up,
            "busy_ticks": int(p[9]), "tool_cpu_ticks": int(p[10]), "wall_ms": int(p[11]),
            "foreign_cpu_ticks": int(p[12]) if len(p) > 12 and p[12].lstrip("-").isdigit() else None,
            "result": _load(os.path.join(results_dir, p[0] + ".json")),
        })
    return stages


def _runs_of(stage):
    """Per-target results of a stage: [(target, result dict normalised)]."""
    r = stage["result"]
    if r is None:
        return []
    if stage["kind"] == "fixed":
        out = []
        for name, t in (r.get("targets") or {}).items():
            t = dict(t)
            t["all_responses"] = t.get("responses_total_incl_warmup") or 0
            t["ok_all"] = t["all_responses"] - t.get("warmup_failures", 0) - t.get("non_2xx", 0)
            t["requests"] = t["requests_intended"]
            t["failed"] = t["non_2xx"] + t["errors"]
            out.append((name, t))
        return out
    e = r["errors"]  # wrk
    t = dict(r)
    t["non_2xx"] = e["status"]
    t["errors"] = e["connect"] + e["read"] + e["write"] + e["timeout"]
    t["requests"] = r["requests"]
    t["failed"] = t["non_2xx"] + t["errors"]
    t["all_responses"] = r["requests"]
    t["ok_all"] = r["requests"] - e["status"]
    t["requests_per_s"] = round(r["requests"] / (r["duration_us"] / 1e6), 1) if r["duration_us"] else None
    return [(stage["targets"][0], t)]


def _stage_figures(st, clk, max_error_rate, failures):
    """Derive per-stage and per-target figures; append failures."""
    st["ok"] = True
    runs = _runs_of(st)
    st["runs"] = {}
    if not runs:
        st["ok"] = False
        failures.append("%s: no result (the load tool exited with %d)" % (st["id"], st["rc"]))
        return
    if st["rc"] != 0:
        st["ok"] = False
        failures.append("%s: the load tool exited with %d" % (st["id"], st["rc"]))
    total_resp = sum(t["all_responses"] for _, t in runs)
    total_ok = sum(t["ok_all"] for _, t in runs)
    per_req = lambda ticks, n: round(ticks / clk * 1e6 / n, 1) if ticks is not None and n else None  # noqa: E731
    for name, t in runs:
        t["ok"] = True
        if t["requests"] == 0 or t["failed"] / float(t["requests"]) > max_error_rate:
            t["ok"] = st["ok"] = False
            failures.append("%s: %s: %d of %d requests failed (non-2xx or error); the limit is %.3f%%"
                            % (st["id"], name, t["failed"], t["requests"], max_error_rate * 100))
        base = "direct" if name == "direct-repeat" else name
        t["target_cpu_us_per_request"] = per_req(st["cpu_ticks"].get(base), t["all_responses"])
        st["runs"][name] = t
    st["upstream_cpu_us_per_request"] = per_req(st["cpu_ticks"].get("upstream"), total_resp)
    st["tool_cpu_us_per_request"] = per_req(st["tool_cpu_ticks"], total_resp)
    if st["wall_ms"]:
        pct = lambda ticks: round(100.0 * ticks / clk / (st["wall_ms"] / 1000.0), 1)  # noqa: E731
        # Per-process times come from the scheduler's exact run-time accounting. (The /proc/stat
        # totals are tick-sampled, and at a fixed request rate the sampling aliases with the
        # request timer on this VM, so they are not used.)
        foreign = st.get("foreign_cpu_ticks")
        st["cpu_percent_of_one_core"] = dict(
            [(k, pct(v)) for k, v in sorted(st["cpu_ticks"].items())]
            + [("load_tool", pct(st["tool_cpu_ticks"])),
               # every other user-space process on the machine (a build, tests...)
               ("other", pct(foreign) if foreign is not None else None)])
    # The upstream must have seen every request that was answered successfully.
    if st["upstream_requests"] is not None and st["kind"] in ("fixed", "max"):
        st["upstream_requests_per_ok_response"] = round(st["upstream_requests"] / total_ok, 4) if total_ok else None
        if total_ok > 0 and st["upstream_requests"] < 0.99 * total_ok:
            st["ok"] = False
            failures.append("%s: the upstream saw %d requests for %d successful answers: a target "
                            "answered without forwarding" % (st["id"], st["upstream_requests"], total_ok))


def cmd_report(results_dir, json_out, max_error_rate, other_cpu_warn="15"):
    max_error_rate = float(max_error_rate)
    other_cpu_warn = float(other_cpu_warn)
    env = _load(os.path.join(results_dir, "env.json")) or {}
    memory = {}
    for name, label in (("gatehouse", "gatehouse"),
                        ("proxy-nginx", "nginx proxy (master + worker)"),
                        ("upstream-nginx", "mock upstream nginx (master + worker)")):
        start = _load(os.path.join(results_dir, "mem-%s-start.json" % name))
        end = _load(os.path.join(results_dir, "mem-%s-end.json" % name))
        if start or end:
            memory[label] = {"start_vmrss_kb": (start or {}).get("vmrss_kb"),
                             "end_vmrss_kb": (end or {}).get("vmrss_kb"),
                             "peak_vmhwm_kb": (end or {}).get("vmhwm_kb"),
                             "processes_at_end": (end or {}).get("processes")}
    gh = _load(os.path.join(results_dir, "gatehouse-info.json"))
    if gh:
        env["gatehouse"] = gh
    clk = float(env.get("clk_tck") or 100)
    failures = []
    fpath = os.path.join(results_dir, "failures.txt")
    if os.path.exists(fpath):
        failures += [l.strip() for l in open(fpath) if l.strip()]

    stages = _read_stages(results_dir)
    for st in stages:
        _stage_figures(st, clk, max_error_rate, failures)
    warnings = []
    for st in stages:
        o = (st.get("cpu_percent_of_one_core") or {}).get("other")
        if o is not None and o > other_cpu_warn:
            warnings.append("%s: other processes used %.0f%% of a core during this stage; its figures "
                            "are disturbed" % (st["id"], o))
    if env.get("nproc_available") and env.get("nproc") and env["nproc_available"] < env["nproc"]:
        warnings.append("this process may use only %s of the %s CPUs" % (env["nproc_available"], env["nproc"]))

    targets = [t for t in ("direct", "nginx", "gatehouse")
               if any(t in s["targets"] for s in stages)]
    summary = {"fixed": {}, "max": {}, "memory": memory, "generator": {}}
    for st in stages:
        if st["kind"] != "fixed" or not st["runs"]:
            continue
        rk = "%g" % st["rate"]
        runs = st["runs"]
        base, noise = {}, {}
        for key in ("p50_ms", "p99_ms"):
            a = ((runs.get("direct") or {}).get("latency") or {}).get(key)
            b = ((runs.get("direct-repeat") or {}).get("latency") or {}).get(key)
            vals = [v for v in (a, b) if v is not None]
            base[key] = round(sum(vals) / len(vals), 4) if vals else None
            noise[key] = round(abs(a - b), 4) if a is not None and b is not None else None
        ps = lambda n, k: (((runs.get(n) or {}).get("per_slice") or {}).get(k))  # noqa: E731
        for key in ("median_p50_ms", "median_p99_ms"):
            a, b = ps("direct", key), ps("direct-repeat", key)
            vals = [v for v in (a, b) if v is not None]
            base["per_slice_" + key] = round(sum(vals) / len(vals), 4) if vals else None
            noise["per_slice_" + key] = round(abs(a - b), 4) if a is not None and b is not None else None
        row = {"stage": st["id"], "direct_baseline": base, "direct_noise": noise,
               "upstream_cpu_us_per_request": st.get("upstream_cpu_us_per_request"),
               "cpu_percent_of_one_core": st.get("cpu_percent_of_one_core")}
        for name, t in runs.items():
            l = t.get("latency") or {}
            svc = t.get("service_time") or {}
            ent = {
                "ok": t["ok"], "measured_s": t.get("measured_s"), "sent_rate": t.get("sent_rate"),
                "p50_ms": l.get("p50_ms"), "p90_ms": l.get("p90_ms"), "p99_ms": l.get("p99_ms"),
                "p999_ms": l.get("p999_ms"), "max_ms": l.get("max_ms"), "mean_ms": l.get("mean_ms"),
                "service_time_p50_ms": svc.get("p50_ms"), "service_time_p99_ms": svc.get("p99_ms"),
                "requests": t["requests"], "non_2xx": t["non_2xx"], "errors": t["errors"],
                "error_kinds": t.get("error_kinds"), "status_counts": t.get("status_counts"),
                "target_cpu_us_per_request": t.get("target_cpu_us_per_request"),
                "queued_for_connection": t.get("queued_for_connection"),
                "send_lag_p50_ms": (t.get("send_lag") or {}).get("p50_ms"),
                "send_lag_p99_ms": (t.get("send_lag") or {}).get("p99_ms"),
                "sends_late_over_1ms": t.get("sends_late_over_1ms"),
                "per_slice": t.get("per_slice"),
            }
            if name in ("nginx", "gatehouse"):
                for key in ("p50_ms", "p99_ms"):
                    ent["added_" + key] = (round(l[key] - base[key], 4)
                                           if l.get(key) is not None and base[key] is not None else None)
                for key in ("median_p50_ms", "median_p99_ms"):
                    v, b = ps(name, key), base["per_slice_" + key]
                    ent["added_per_slice_" + key] = round(v - b, 4) if v is not None and b is not None else None
            row[name] = ent
        summary["fixed"][rk] = row
        r = st["result"]
        summary["generator"][rk] = {
            "stage": st["id"], "timer": r.get("timer"),
            "cpu_us_per_request": r.get("generator_cpu_us_per_request"),
            "cpu_percent_of_one_core": r.get("generator_cpu_percent_of_one_core"),
            "send_lag_p50_ms": _median([row[n]["send_lag_p50_ms"] for n in runs]),
            "send_lag_p99_ms": max([row[n]["send_lag_p99_ms"] or 0 for n in runs] or [0]),
            "sends_late_over_1ms": sum(row[n]["sends_late_over_1ms"] or 0 for n in runs),
            "slices_per_target": r.get("slices_per_target"), "slice_s": r.get("slice_s"),
        }
    calib = [s for s in stages if s["kind"] == "calib" and s["runs"]]
    if calib:
        summary["generator"]["wrk_c1_direct_latency_us"] = calib[0]["result"]["latency_us"]

    for t in targets:
        runs = [(s, s["runs"][t]) for s in stages if s["kind"] == "max" and t in s["runs"]]
        if not runs:
            continue
        rps = [r.get("requests_per_s") for _, r in runs]
        summary["max"][t] = {
            "stages": [s["id"] for s, _ in runs],
            "requests_per_s": _median(rps),
            "requests_per_s_runs": rps,
            "p50_ms": _median([r["latency_us"]["p50"] / 1000.0 for _, r in runs]),
            "p99_ms": _median([r["latency_us"]["p99"] / 1000.0 for _, r in runs]),
            "requests": sum(r["requests"] for _, r in runs),
            "non_2xx": sum(r["non_2xx"] for _, r in runs),
            "errors": sum(r["errors"] for _, r in runs),
            "target_cpu_us_per_request": _median([r.get("target_cpu_us_per_request") for _, r in runs]),
            "upstream_cpu_us_per_request": _median([s.get("upstream_cpu_us_per_request") for s, _ in runs]),
            "other_cpu_percent_of_one_core": _median(
                [(s.get("cpu_percent_of_one_core") or {}).get("other") for s, _ in runs]),
            "ok": all(s.get("ok") for s, _ in runs),
        }
    dmax = (summary["max"].get("direct") or {}).get("requests_per_s")
    for e in summary["max"].values():
        e["percent_of_direct"] = round(100.0 * e["requests_per_s"] / dmax, 1) if dmax and e["requests_per_s"] else None

    passed = not failures
    doc = {"passed": passed, "failures": failures, "warnings": warnings, "environment": env,
           "max_error_rate": max_error_rate, "summary": summary, "stages": stages}
    if json_out:
        with open(json_out, "w") as f:
            f.write(json.dumps(doc, indent=2) + "\n")
    print(_markdown(doc, targets))
    return 0 if passed else 1


def _markdown(doc, targets):
    env, summary = doc["environment"], doc["summary"]
    o = []
    w = o.append
    w("## Gatehouse load benchmark — %s" % env.get("date", "?"))
    w("")
    w("- Machine: **%s CPU cores in total** (%s), %s, %s GiB RAM. The mock upstream (nginx, "
      "`worker_processes 1`), the proxy under test (nginx with `worker_processes 1`, or Gatehouse) "
      "and the load generator all share these %s cores." % (
          env.get("nproc"), env.get("cpu_model"), env.get("kernel"), env.get("mem_gib"), env.get("nproc")))
    w("- Load average before / after: %s / %s." % (env.get("loadavg_start"), env.get("loadavg_end")))
    w("- Tools: %s; %s; loadgen.py %s (Python %s, timer: %s)." % (
        env.get("nginx_version"), env.get("wrk_version"), env.get("loadgen_version"),
        env.get("python_version"), env.get("loadgen_timer", "?")))
    if env.get("gatehouse"):
        g = env["gatehouse"]
        w("- Gatehouse: `%s` (%s, sha256 %s…)." % (g.get("path"), g.get("version") or "version unknown",
                                                  (g.get("sha256") or "?")[:12]))
    elif env.get("gatehouse_skipped") in (1, "1"):
        w("- Gatehouse: skipped (`--skip-gatehouse`).")
    w("- Fixed rates: open loop, latency from the *intended* send time; per rate one run rotating "
      "between the targets in %s s slices (first %s s of each unmeasured) until each has %s s "
      "measured, after %s s warm-up each. Max throughput: wrk `-t%s -c%s -d%ss`, %s runs per "
      "target, median shown." % (
          env.get("slice_s"), env.get("settle_s"), env.get("duration_fixed"), env.get("warmup"),
          env.get("wrk_threads"), env.get("wrk_connections"), env.get("duration_max"),
          env.get("max_repeats")))
    w("")
    w("### Latency at fixed request rates")
    w("")
    w("| target | rate (req/s) | sent (req/s) | p50 (ms) | p99 (ms) | added p50 (ms) | added p99 (ms) "
      "| target CPU (µs/req) | non-2xx | errors |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rk, row in summary["fixed"].items():
        for t in targets + ["direct-repeat"]:
            e = row.get(t)
            if not e:
                continue
            if t == "direct-repeat":
                n = row["direct_noise"]
                added = ("noise %s" % _fmt(n["p50_ms"]), "noise %s" % _fmt(n["p99_ms"]))
                name = "direct (again)"
            elif t == "direct":
                added, name = ("(baseline)", "(baseline)"), t
            else:
                added, name = (_signed(e.get("added_p50_ms")), _signed(e.get("added_p99_ms"))), t
            w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                name, rk, _fmt(e["sent_rate"], 1), _fmt(e["p50_ms"]), _fmt(e["p99_ms"]), added[0], added[1],
                _fmt(e["target_cpu_us_per_request"], 1) if t in ("nginx", "gatehouse") else "—",
                _fmt(e["non_2xx"]), _fmt(e["errors"])))
    w("")
    w("*added* = target − direct baseline at the same rate (the mean of the two direct entries in "
      "the rotation). *noise* = |direct − direct (again)|: a difference smaller than that is not "
      "resolved. *target CPU*: user+system time of the target's processes per request "
      "(clock-tick resolution).")
    w("")
    if any((row.get("direct") or {}).get("per_slice") for row in summary["fixed"].values()):
        w("Cross-check robust to short bursts of other work: the median over the rotation's slices "
          "of each slice's own p50 / p99 (ms).")
        w("")
        w("| target | rate (req/s) | slices | p50 | p99 | added p50 | added p99 |")
        w("|---|---:|---:|---:|---:|---:|---:|")
        for rk, row in summary["fixed"].items():
            for t in targets + ["direct-repeat"]:
                e = row.get(t)
                p = (e or {}).get("per_slice")
                if not p:
                    continue
                if t == "direct-repeat":
                    n = row["direct_noise"]
                    added = ("noise %s" % _fmt(n.get("per_slice_median_p50_ms")),
                             "noise %s" % _fmt(n.get("per_slice_median_p99_ms")))
                elif t == "direct":
                    added = ("(baseline)", "(baseline)")
                else:
                    added = (_signed(e.get("added_per_slice_median_p50_ms")),
                             _signed(e.get("added_per_slice_median_p99_ms")))
                w("| %s | %s | %s | %s | %s | %s | %s |" % (
                    "direct (again)" if t == "direct-repeat" else t, rk, p["slices"],
                    _fmt(p["median_p50_ms"]), _fmt(p["median_p99_ms"]), added[0], added[1]))
        w("")
    if summary["max"]:
        w("### Maximum throughput (closed loop)")
        w("")
        w("| target | req/s (median) | runs | % of direct | p50 (ms) | p99 (ms) | target CPU (µs/req) "
          "| non-2xx | errors |")
        w("|---|---:|---|---:|---:|---:|---:|---:|---:|")
        for t in targets:
            e = summary["max"].get(t)
            if not e:
                continue
            w("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                t, _fmt(e["requests_per_s"], 0), " / ".join(_fmt(v, 0) for v in e["requests_per_s_runs"]),
                _fmt(e["percent_of_direct"], 1), _fmt(e["p50_ms"]), _fmt(e["p99_ms"]),
                _fmt(e["target_cpu_us_per_request"], 1) if t != "direct" else "—",
                _fmt(e["non_2xx"]), _fmt(e["errors"])))
        w("")
    mem = summary.get("memory") or {}
    if mem:
        w("### Memory (/proc/PID/status; peak = VmHWM read after all runs)")
        w("")
        w("| process | RSS after start (MiB) | RSS at end (MiB) | peak RSS (MiB) |")
        w("|---|---:|---:|---:|")
        for name, m in mem.items():
            w("| %s | %s | %s | %s |" % (name, _fmt(_mib(m.get("start_vmrss_kb")), 1),
                                         _fmt(_mib(m.get("end_vmrss_kb")), 1),
                                         _fmt(_mib(m.get("peak_vmhwm_kb")), 1)))
        w("")
    w("### The load generator's own cost")
    w("")
    w("| rate (req/s) | CPU (µs/req) | CPU (% of a core) | send lag p50 (ms) | worst send lag p99 (ms) "
      "| sends > 1 ms late |")
    w("|---:|---:|---:|---:|---:|---:|")
    for rk, g in summary["generator"].items():
        if rk == "wrk_c1_direct_latency_us":
            continue
        w("| %s | %s | %s | %s | %s | %s |" % (
            rk, _fmt(g["cpu_us_per_request"], 1), _fmt(g["cpu_percent_of_one_core"], 1),
            _fmt(g["send_lag_p50_ms"], 4), _fmt(g["send_lag_p99_ms"], 4), _fmt(g["sends_late_over_1ms"])))
    c1 = summary["generator"].get("wrk_c1_direct_latency_us")
    if c1:
        w("")
        w("For scale: wrk with one connection, closed loop, direct: p50 %s ms, p99 %s ms." % (
            _fmt(c1["p50"] / 1000.0), _fmt(c1["p99"] / 1000.0)))
    w("")
    if doc["warnings"]:
        w("**Warnings**")
        w("")
        for x in doc["warnings"]:
            w("- %s" % x)
        w("")
    if doc["passed"]:
        w("**Result: PASS** — every stage stayed within %.3f%% non-2xx + errors, and the upstream "
          "received every request." % (doc["max_error_rate"] * 100))
    else:
        w("**Result: FAIL**")
        w("")
        for f in doc["failures"]:
            w("- %s" % f)
    return "\n".join(o)


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {
        "ports": cmd_ports, "render": cmd_render, "smoke": cmd_smoke, "wait-http": cmd_wait_http,
        "upstream-count": cmd_upstream_count, "cputicks": cmd_cputicks, "ticks": cmd_ticks, "mem": cmd_mem,
        "foreign-ticks": cmd_foreign_ticks,
        "parse-wrk": cmd_parse_wrk, "report": cmd_report, "env": cmd_env, "create-key": cmd_create_key,
    }.get(cmd)
    if fn is None:
        print(__doc__, file=sys.stderr)
        return 2
    return fn(*args) or 0


if __name__ == "__main__":
    sys.exit(main())
