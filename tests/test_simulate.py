"""rca simulate: determinism, file layout, and that every fault shows at its origin and propagates."""

from __future__ import annotations

import gzip
import json
import statistics
from random import Random

import pytest

from rca.ingest.otlp_json import decode_json
from rca.simulate import FAULT_KINDS, load_topology, run_suite
from rca.simulate.engine import Engine, MemorySink, pod_names
from rca.simulate.faults import fixed_fault, plan_faults
from rca.simulate.logstyle import DEPLOY_BUGS
from rca.simulate.metrics import scrape_points

S = 1_000_000_000
SMALL = dict(rate=5, baseline_s=30, fault_s=20, gap_s=5)


def _files(d):
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path):
    a = run_suite("shop", 2, 11, tmp_path / "a", **SMALL)
    run_suite("shop", 2, 11, tmp_path / "b", **SMALL)
    run_suite("shop", 2, 12, tmp_path / "c", **SMALL)
    fa, fb, fc = _files(tmp_path / "a"), _files(tmp_path / "b"), _files(tmp_path / "c")
    assert set(fa) == {"README.md", "cases.jsonl", "traces.jsonl.gz", "logs.jsonl.gz", "metrics.jsonl.gz"}
    assert fa == fb
    assert fa["traces.jsonl.gz"] != fc["traces.jsonl.gz"]
    assert a.counts["traces"]["items"] > 1000


def test_files_decode_line_by_line_into_the_reported_counts(tmp_path):
    res = run_suite("ridehail", 3, 4, tmp_path, **SMALL)
    for signal, table in (("traces", "spans"), ("logs", "logs"), ("metrics", "metrics")):
        n_rows = n_lines = 0
        last_first = 0
        with gzip.open(tmp_path / f"{signal}.jsonl.gz", "rb") as fh:
            for line in fh:
                batch = decode_json(line)
                assert sum(batch.rejected.values()) == 0, batch.errors
                t = batch.tables[table]
                assert 0 < t.num_rows <= 2000
                col = "start_ns" if table == "spans" else "time_ns"
                times = t.column(col).to_pylist()
                assert min(times) >= last_first      # lines are in time order
                last_first = max(times) if table != "metrics" else min(times)
                n_rows += t.num_rows
                n_lines += 1
        assert n_rows == res.counts[signal]["items"]
        assert n_lines == res.counts[signal]["lines"]
    cases = [json.loads(x) for x in (tmp_path / "cases.jsonl").read_text().splitlines()]
    assert cases == res.cases and len(cases) == 3
    for c in cases:
        assert set(c) == {"case_id", "system", "inject_time", "fault_type", "root_cause", "window"}
        assert c["system"] == "ridehail" and c["fault_type"] in FAULT_KINDS
        assert c["window"]["start"] < c["inject_time"] < c["window"]["end"]
    assert "rca simulate --topology ridehail --faults 3 --seed 4" in (tmp_path / "README.md").read_text()


def test_planner_cycles_every_kind_on_eligible_targets():
    topo = load_topology("ridehail")
    names = pod_names(topo, 0)
    faults = plan_faults(topo, names, 20, Random(0), [i * S for i in range(20)], S)
    assert {f.kind for f in faults} == set(FAULT_KINDS)
    assert all(f.pod in names[f.service] for f in faults)
    assert {f.service for f in faults if f.kind == "db_lock"} == {"postgres"}


# --- propagation, one test per fault kind ----------------------------------------------------

def simulate(kind, service, topology="shop", rate=12, intensity=0.9):
    """60 s baseline, then the fault for 60 s; returns records split into before/during."""
    topo = load_topology(topology)
    t0 = 1_714_550_400 * S
    fault = fixed_fault(topo, pod_names(topo, 7), {"kind": kind, "service": service, "intensity": intensity},
                        t0 + 60 * S, 60 * S)
    engine = Engine(topo, 7, rate, t0, t0 + 120 * S, [fault])
    sink = MemorySink()
    engine.run(sink)
    metrics = scrape_points(engine)
    names = [p.service for p in engine.pods]
    spans = [dict(zip(("start", "end", "tid", "sid", "pid", "pod", "name", "kind", "code", "msg", "attrs", "events"),
                      r), service=names[r[5]]) for r in sink.spans]
    logs = [dict(zip(("t", "pod", "tid", "sid", "sev", "level", "body", "attrs"), r), service=names[r[1]])
            for r in sink.logs]
    mets = [dict(zip(("t", "pod", "name", "unit", "value"), r), service=names[r[1]]) for r in metrics]
    before = {"spans": [s for s in spans if s["start"] < fault.start_ns],
              "logs": [x for x in logs if x["t"] < fault.start_ns], "metrics": [m for m in mets if m["t"] < fault.start_ns]}
    during = {"spans": [s for s in spans if s["start"] >= fault.start_ns + 5 * S],
              "logs": [x for x in logs if x["t"] >= fault.start_ns], "metrics": [m for m in mets if m["t"] >= fault.start_ns + 20 * S]}
    return fault, before, during


def self_ms(spans, service, kind=2):
    """Median self time (duration minus the union of child intervals) of a service's spans."""
    children: dict[str, list] = {}
    for s in spans:
        children.setdefault(s["pid"], []).append((s["start"], s["end"]))
    out = []
    for s in spans:
        if s["service"] != service or s["kind"] != kind:
            continue
        covered, cur_s, cur_e = 0, None, None
        for a, b in sorted(children.get(s["sid"], [])):
            if cur_e is None or a > cur_e:
                covered += (cur_e - cur_s) if cur_e is not None else 0
                cur_s, cur_e = a, b
            else:
                cur_e = max(cur_e, b)
        covered += (cur_e - cur_s) if cur_e is not None else 0
        out.append((s["end"] - s["start"] - covered) / 1e6)
    return statistics.median(out) if out else 0.0


def metric(rows, service, name):
    vals = [m["value"] for m in rows if m["service"] == service and m["name"] == name]
    return statistics.mean(vals) if vals else 0.0


def errors(spans, service, kind=2):
    return sum(1 for s in spans if s["service"] == service and s["kind"] == kind and s["code"] == 2)


def test_latency_is_self_time_at_the_target_and_only_waiting_in_callers():
    _, b, d = simulate("latency", "product-catalog")
    assert self_ms(d["spans"], "product-catalog") > 10 * self_ms(b["spans"], "product-catalog")
    assert self_ms(d["spans"], "frontend") < 1.5 * self_ms(b["spans"], "frontend")
    p90 = lambda sp: sorted(s["end"] - s["start"] for s in sp if s["service"] == "frontend" and s["kind"] == 2)
    assert statistics.median(p90(d["spans"])) > 3 * statistics.median(p90(b["spans"]))


def test_exception_errors_originate_at_the_target_and_callers_log_upstream_errors():
    _, b, d = simulate("exception", "currency")
    origin = [s for s in d["spans"] if s["service"] == "currency" and s["code"] == 2]
    assert len(origin) > 50 and all(s["events"] and s["events"][0][1] == "exception" for s in origin)
    assert errors(b["spans"], "currency") <= 2
    callers = [s for s in d["spans"] if s["kind"] == 3 and dict(s["attrs"]).get("peer.service") == "currency"
               and s["code"] == 2]
    assert {s["service"] for s in callers} >= {"frontend"}
    assert any(x["service"] == "frontend" and x["level"] == "ERROR" and "currency" in x["body"] for x in d["logs"])
    assert any(x["service"] == "currency" and x["level"] == "ERROR" for x in d["logs"])


def test_cpu_contention_raises_the_cpu_metric_and_latency_of_the_target():
    _, b, d = simulate("cpu_contention", "checkout")
    assert metric(d["metrics"], "checkout", "k8s.pod.cpu.usage_rate") > 5 * metric(b["metrics"], "checkout",
                                                                                   "k8s.pod.cpu.usage_rate")
    assert metric(d["metrics"], "cart", "k8s.pod.cpu.usage_rate") < 2 * metric(b["metrics"], "cart",
                                                                               "k8s.pod.cpu.usage_rate")
    assert self_ms(d["spans"], "checkout") > 2 * self_ms(b["spans"], "checkout")


def test_memory_leak_grows_memory_to_the_limit_then_out_of_memory_errors():
    f, b, d = simulate("memory_leak", "ad")
    limit = load_topology("shop").services["ad"].memory_limit_mi
    late = [m["value"] for m in d["metrics"] if m["service"] == "ad" and m["name"] == "k8s.pod.memory.usage"]
    assert max(late) > 0.9 * limit > 2 * metric(b["metrics"], "ad", "k8s.pod.memory.usage")
    assert any("OutOfMemoryError" in x["body"] for x in d["logs"] if x["service"] == "ad")
    assert not any("OutOfMemoryError" in x["body"] for x in b["logs"])


def test_network_delay_shows_on_the_edges_of_the_target_not_in_its_handlers():
    _, b, d = simulate("network_delay", "cart")

    def gap(spans):   # client span minus the server span it caused, for calls into cart
        by_parent = {s["pid"]: s for s in spans if s["service"] == "cart" and s["kind"] == 2}
        return statistics.median((c["end"] - c["start"] - (by_parent[c["sid"]]["end"] - by_parent[c["sid"]]["start"]))
                                 / 1e6 for c in spans if c["kind"] == 3 and c["sid"] in by_parent)
    assert gap(d["spans"]) > 50 > 5 > gap(b["spans"])
    assert self_ms(d["spans"], "cart") < 1.5 * self_ms(b["spans"], "cart")


def test_dependency_down_callers_get_connection_refused_and_retry():
    f, b, d = simulate("dependency_down", "shipping")
    assert not [s for s in d["spans"] if s["service"] == "shipping" and s["start"] < f.end_ns - S]
    refused = [s for s in d["spans"] if s["kind"] == 3 and dict(s["attrs"]).get("error.type") == "connection_refused"]
    assert len(refused) > 20 and "frontend" in {s["service"] for s in refused}
    assert any(dict(s["attrs"]).get("http.request.resend_count", 0) > 0 for s in refused)
    assert any("retrying" in x["body"] and "refused" in x["body"].lower() for x in d["logs"])
    assert any(x["service"] == "shipping" and x["level"] == "FATAL" for x in d["logs"])


def test_db_lock_is_self_time_in_the_database_span_not_in_the_caller():
    _, b, d = simulate("db_lock", "postgres", rate=15)
    ins = lambda sp: [s for s in sp if s["service"] == "postgres" and s["name"].startswith("INSERT")]
    assert self_ms(ins(d["spans"]), "postgres") > 10 * self_ms(ins(b["spans"]), "postgres")
    assert self_ms(d["spans"], "checkout") < 1.5 * self_ms(b["spans"], "checkout")
    assert any("still waiting for ShareLock" in x["body"] for x in d["logs"] if x["service"] == "postgres")


def test_bad_deploy_brings_a_new_error_template_at_the_target():
    _, b, d = simulate("bad_deploy", "payment", rate=20)
    marker = DEPLOY_BUGS["node"][0]
    assert not any(marker in x["body"] for x in b["logs"])
    new = [x for x in d["logs"] if marker in x["body"]]
    assert len(new) >= 5 and "payment" in {x["service"] for x in new}   # callers quote the upstream message
    raised = {s["service"] for s in d["spans"] if s["events"] and dict(s["events"][0][2])["exception.type"] == marker}
    assert raised == {"payment"}
    assert any(x["service"] == "payment" and "Starting payment version 1.1.0" in x["body"] for x in d["logs"])
    assert errors(d["spans"], "checkout") > errors(b["spans"], "checkout")


def test_cache_failure_turns_into_database_load():
    _, b, d = simulate("cache_failure", "redis")
    hits = lambda sp: [dict(s["attrs"])["cache.hit"] for s in sp if s["service"] == "redis" and not
                       s["name"].startswith("H")]
    assert statistics.mean(hits(b["spans"])) > 0.8 > 0.2 > statistics.mean(hits(d["spans"]))
    selects = lambda sp: sum(1 for s in sp if s["service"] == "postgres" and s["name"].startswith("SELECT"))
    assert selects(d["spans"]) > 4 * selects(b["spans"])
    assert metric(d["metrics"], "redis", "k8s.pod.memory.usage_rate") > 98
    assert any(x["service"] == "redis" and x["level"] == "WARN" for x in d["logs"])


def test_retry_storm_multiplies_calls_from_the_target_and_load_on_its_callees():
    _, b, d = simulate("retry_storm", "recommendation", rate=20)
    resent = lambda sp: sum(1 for s in sp if s["service"] == "recommendation" and s["kind"] == 3
                            and dict(s["attrs"]).get("http.request.resend_count", 0) > 0)
    assert resent(d["spans"]) > 50 and resent(b["spans"]) < 5
    load = lambda sp: sum(1 for s in sp if s["service"] == "product-catalog" and s["kind"] == 2)
    assert load(d["spans"]) > 1.3 * load(b["spans"])
    assert any(x["service"] == "recommendation" and "configuration reloaded" in x["body"] for x in d["logs"])


def test_every_fault_kind_is_covered_by_a_propagation_test():
    names = {n for n in globals() if n.startswith("test_")}
    covered = {"latency": "test_latency_", "exception": "test_exception_", "cpu_contention": "test_cpu_contention_",
               "memory_leak": "test_memory_leak_", "network_delay": "test_network_delay_",
               "dependency_down": "test_dependency_down_", "db_lock": "test_db_lock_",
               "bad_deploy": "test_bad_deploy_", "cache_failure": "test_cache_failure_",
               "retry_storm": "test_retry_storm_"}
    assert set(covered) == set(FAULT_KINDS)
    assert all(any(n.startswith(p) for n in names) for p in covered.values())
    with pytest.raises(Exception, match="does not apply"):
        fixed_fault(load_topology("shop"), pod_names(load_topology("shop"), 0),
                    {"kind": "db_lock", "service": "cart"}, 0, S)


def test_the_committed_sample_is_what_its_readme_command_generates(tmp_path):
    from pathlib import Path
    import shlex

    from rca.interfaces.cli.main import main

    sample = Path(__file__).resolve().parents[1] / "datasets" / "sample"
    readme = (sample / "README.md").read_text()
    cmd = next(line for line in readme.splitlines() if line.startswith("rca simulate "))
    argv = shlex.split(cmd.replace("--out DIR", f"--out {tmp_path}"))[1:]
    main(argv)
    for name in ("cases.jsonl", "traces.jsonl.gz", "logs.jsonl.gz", "metrics.jsonl.gz", "README.md"):
        assert (tmp_path / name).read_bytes() == (sample / name).read_bytes(), name
    assert sum((sample / n).stat().st_size for n in ("traces.jsonl.gz", "logs.jsonl.gz", "metrics.jsonl.gz")) < 5e6
