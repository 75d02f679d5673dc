"""The statistics under window-level explain, on small frames with a known answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rca.anomaly.shift import mix_anomaly, share_drop, value_shift
from rca.anomaly.spans import SpanAnomalyModel
from rca.errors import InvalidInput, NotFitted
from rca.localize.callgraph import CallGraph, propagate
from rca.localize.signals import as_rates

S = 1_000_000_000


def _logs(n_buckets=20, window=(17, 20), vanish=None, appear=None, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for b in range(n_buckets):
        in_w = window[0] <= b < window[1]
        for svc in ("a", "b"):
            for key, rate in (("x", 30), ("y", 30), ("z", 5)):
                if in_w and (svc, key) == vanish:
                    continue
                for _ in range(rng.poisson(rate)):
                    rows.append((b * 60 * S + int(rng.integers(0, 60 * S)), svc, key))
            if in_w and svc == appear:
                rows += [(b * 60 * S + i, svc, "new") for i in range(10)]
    return pd.DataFrame(rows, columns=["time_ns", "service", "template_id"])


def test_mix_anomaly_flags_the_service_whose_lines_vanish():
    logs = _logs(vanish=("b", "y"))
    out = mix_anomaly(logs, "service", "template_id", 17 * 60 * S, 20 * 60 * S, 60 * S)
    assert out.loc["b", "score"] > 1.5 > 0.6 > out.loc["a", "score"]
    assert out.loc["b", "top_key"] == "y" and out.loc["b", "top_z"] < 0


def test_mix_anomaly_flags_a_new_template_and_names_it():
    logs = _logs(appear="a")
    out = mix_anomaly(logs, "service", "template_id", 17 * 60 * S, 20 * 60 * S, 60 * S)
    assert out.loc["a", "score"] > 5 > out.loc["b", "score"]
    assert out.loc["a", "up_key"] == "new" and out.loc["a", "up_b_share"] == 0.0


def test_quiet_window_scores_low():
    out = mix_anomaly(_logs(), "service", "template_id", 17 * 60 * S, 20 * 60 * S, 60 * S)
    assert (out["score"] < 3).all()


def test_value_shift_compares_like_with_like():
    rng = np.random.default_rng(1)
    v = pd.DataFrame({"k": ["a"] * 400 + ["b"] * 400, "v": np.r_[rng.normal(10, 1, 400), rng.normal(10, 1, 400)]})
    in_w = np.zeros(800, bool)
    in_w[360:400] = in_w[760:800] = True
    v.loc[760:799, "v"] += 5  # b shifted in the window
    for q in (0.5, 0.75):
        out = value_shift(v, ["k"], "v", in_w, window_quantile=q).set_index("k")
        assert out.loc["b", "z"] > 3 and abs(out.loc["a", "z"]) < 1.5, q


def test_share_drop_sees_a_service_go_quiet():
    rows = []
    for b in range(20):
        for svc, n in (("a", 100), ("b", 50), ("c", 50)):
            if svc == "c" and b >= 18:
                n = 0
            rows += [(b * 60 * S + i, svc) for i in range(n)]
    df = pd.DataFrame(rows, columns=["time_ns", "service"])
    z = share_drop(df, "service", 17 * 60 * S, 20 * 60 * S, 60 * S)
    assert z["c"] > 5 and z["a"] < 3 and z["b"] < 3


def test_counters_become_increases():
    m = pd.DataFrame({"time_ns": [1, 2, 3, 1, 2, 3], "service": "s", "pod": "p",
                      "name": ["k8s.pod.restarts"] * 3 + ["cpu"] * 3, "metric_type": "gauge",
                      "value": [2.0, 2.0, 3.0, 5.0, 6.0, 7.0]})
    out = as_rates(m)
    assert out[out["name"] == "k8s.pod.restarts"]["value"].tolist() == [0.0, 1.0]
    assert out[out["name"] == "cpu"]["value"].tolist() == [5.0, 6.0, 7.0]  # a gauge stays a level


def test_callee_that_explains_its_callers_outranks_them():
    graph = CallGraph(pd.DataFrame({"caller": ["fe", "co"], "callee": ["co", "pay"]}))
    final, roles = propagate({"fe": 20.0, "co": 15.0, "pay": 10.0, "other": 4.0}, graph, threshold=3.0)
    assert max(final, key=final.get) == "pay"
    assert roles == {"fe": "impact", "co": "propagation", "pay": "root_cause", "other": "root_cause"}


def _spans(n=300, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        t = i * S
        d_child = int(rng.lognormal(np.log(5e6), 0.2))
        rows.append((f"{i:032x}", f"{2 * i:016x}", "", "fe", "GET /", 2, t, t + d_child + 2_000_000, 0, "[]"))
        rows.append((f"{i:032x}", f"{2 * i + 1:016x}", f"{2 * i:016x}", "db", "SELECT", 3, t + 1_000_000,
                     t + 1_000_000 + d_child, 0, "[]"))
    return pd.DataFrame(rows, columns=["trace_id", "span_id", "parent_span_id", "service", "name", "kind",
                                       "start_ns", "end_ns", "status_code", "events"])


def test_span_model_flags_slow_self_time_and_round_trips(tmp_path):
    spans = _spans()
    model = SpanAnomalyModel(random_state=0).fit(spans)
    slow = _spans(3, seed=5)
    slow.loc[slow["service"] == "db", "end_ns"] += 200_000_000  # db slow in its own code
    slow.loc[slow["service"] == "fe", "end_ns"] += 200_000_000  # fe only waited
    scored = model.score_samples(slow).set_index("service")
    assert scored.loc["db", "anomalous"].all() and (scored.loc["db", "self_z"] > 5).all()
    assert (scored.loc["fe", "self_z"].abs() < 3).all()  # its own time did not change
    model.save(tmp_path)
    again = SpanAnomalyModel.load(tmp_path)
    np.testing.assert_allclose(again.score_samples(slow)["score"], model.score_samples(slow)["score"])
    with pytest.raises(NotFitted):
        SpanAnomalyModel.load(tmp_path / "missing")
    with pytest.raises(InvalidInput):
        SpanAnomalyModel().fit(spans.iloc[:0])
