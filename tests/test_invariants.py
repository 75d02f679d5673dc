"""Log invariants: two templates a request logs equally often, and the window that breaks them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rca.anomaly.invariants import InvariantIndex, parse_key

S = 1_000_000_000
MINUTES = 60
WINDOW = (55 * 60 * S, 60 * 60 * S)


def _logs(cut_share=0.0, base_cut_share=0.0, seed=0):
    """Service "api" logs [1] "start" then, per item, [2] "fetch" and [3] "done" (1-3 items a request);
    service "web" logs a random mix of [7], [8], [9] per request (no invariant). In the window a
    ``cut_share`` of api's requests stop after their first "fetch" (an exception between the two)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(MINUTES * 20):
        t = i * 3 * S
        in_w = WINDOW[0] <= t < WINDOW[1]
        tid = f"{i:032x}"
        rows.append((t, tid, "api", 1))
        cut = rng.random() < (cut_share if in_w else base_cut_share)
        for item in range(int(rng.integers(1, 4))):
            rows.append((t + item + 1, tid, "api", 2))
            if cut:
                break
            rows.append((t + item + 2, tid, "api", 3))
        for _ in range(int(rng.integers(1, 4))):
            rows.append((t + 10, tid, "web", int(rng.choice([7, 8, 9]))))
    return pd.DataFrame(rows, columns=["time_ns", "trace_id", "service", "template_id"])


def test_a_cut_code_path_is_found_and_named():
    logs = _logs(cut_share=0.5)
    index = InvariantIndex(logs)
    out = index.score(*WINDOW)
    assert "api" in out.index and "web" not in out.index
    row = out.loc["api"]
    assert {row["a"], row["b"]} == {"log:2", "log:3"}
    assert row["score"] > 6 and row["broken"] >= 20 and row["base_rate"] <= 0.01
    broken = index.broken_requests("api", row["a"], row["b"], *WINDOW, limit=100)
    assert broken and len(broken) == int(row["broken"])
    for tid in broken:  # every listed request really logged the two lines a different number of times
        mine = logs[(logs["trace_id"] == tid) & (logs["service"] == "api")]["template_id"]
        assert (mine == 2).sum() != (mine == 3).sum()


def test_a_quiet_window_breaks_nothing():
    out = InvariantIndex(_logs()).score(*WINDOW)
    assert out.empty


def test_breakage_at_the_usual_background_rate_is_not_news():
    out = InvariantIndex(_logs(cut_share=0.05, base_cut_share=0.05, seed=3)).score(*WINDOW)
    assert out.empty or out["score"].max() < 3


def test_a_pair_that_often_disagrees_is_no_invariant():
    # broken in a quarter of all requests, window included: never a candidate, so never scored
    out = InvariantIndex(_logs(cut_share=0.6, base_cut_share=0.25, seed=4)).score(*WINDOW)
    assert out.empty


def test_logs_without_trace_ids_or_templates_are_ignored():
    logs = _logs(cut_share=0.5).assign(trace_id="")
    assert InvariantIndex(logs).score(*WINDOW).empty
    assert InvariantIndex(logs.iloc[:0]).score(*WINDOW).empty


def _spans_for(logs, cut_traces=()):
    """One "GET /items" span per api request; api logs [5] "served" once per span, except in ``cut_traces``."""
    first = logs[logs["service"] == "api"].groupby("trace_id")["time_ns"].min()
    spans = pd.DataFrame({"service": "api", "trace_id": first.index, "name": "GET /items", "start_ns": first.to_numpy(),
                          "span_id": [f"{i:016x}" for i in range(len(first))], "parent_span_id": "", "kind": 2,
                          "status_code": 0})
    served = spans[~spans["trace_id"].isin(cut_traces)]
    more = pd.DataFrame({"time_ns": served["start_ns"] + 50, "trace_id": served["trace_id"], "service": "api",
                         "template_id": 5})
    return spans, pd.concat([logs, more], ignore_index=True)


def test_a_log_line_that_stops_following_its_span_is_found():
    base = _logs()
    base = base[base["template_id"] != 1]  # no other once-per-request line: the span is 5's only partner
    api_traces = base.loc[base["service"] == "api", ["trace_id", "time_ns"]].groupby("trace_id")["time_ns"].min()
    in_w = api_traces[(api_traces >= WINDOW[0]) & (api_traces < WINDOW[1])].index
    spans, logs = _spans_for(base, cut_traces=set(in_w[::2]))
    out = InvariantIndex(logs, spans).score(*WINDOW)
    row = out.loc["api"]
    assert {parse_key(row["a"]), parse_key(row["b"])} == {("span", "GET /items"), ("log", "5")}
    assert row["score"] > 6
    # without the spans the log line has no partner that moves with it
    assert "api" not in InvariantIndex(logs).score(*WINDOW).index


def test_breaks_caused_by_a_failing_callee_are_the_callee_s_not_the_caller_s():
    logs = _logs(cut_share=0.5)
    api = logs[logs["service"] == "api"]
    # which requests were cut: fewer "done" [3] than "fetch" [2]
    per = api.groupby(["trace_id", "template_id"]).size().unstack(fill_value=0)
    cut = set(per.index[per[2] != per[3]])
    first = api.groupby("trace_id")["time_ns"].min()
    rows = []
    for i, (tid, t) in enumerate(first.items()):
        rows.append((tid, f"{2 * i:016x}", "", "api", "GET /items", 2, t, 0))
        rows.append((tid, f"{2 * i + 1:016x}", f"{2 * i:016x}", "db", "SELECT items", 2, t + 1,
                     2 if tid in cut else 0))
    spans = pd.DataFrame(rows, columns=["trace_id", "span_id", "parent_span_id", "service", "name", "kind",
                                        "start_ns", "status_code"])
    # every cut request saw its database call fail: api only waited on db, so its invariants stay quiet
    out = InvariantIndex(logs, spans).score(*WINDOW)
    assert "api" not in out.index
    # the same cut with healthy callees is api's own doing
    out = InvariantIndex(logs, spans.assign(status_code=0)).score(*WINDOW)
    assert out.loc["api", "score"] > 6
