"""Per-service anomaly signals for an incident window, each against the service's own baseline.

Every signal is a non-negative score in robust-z-like units (about 3 = clearly unusual).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rca.anomaly.shift import mix_anomaly, share_drop, value_shift

ERROR_SEVERITY = 17
METRIC_KEYS = ["service", "pod", "name"]
SELF_QUANTILE = 0.75
CAP = 30.0
RESOURCE = re.compile(r"cpu|mem|heap|gc|network|net\.|disk|io\.|thread|fd|restart|oom|load", re.I)
NETWORK = re.compile(r"network|net\.|tcp|latency\.client|rtt", re.I)
LATENCY_METRIC = re.compile(r"latency|duration", re.I)
# node/host-wide metrics are shared by every pod on the machine: they cannot say which service is short
SHARED_METRIC = re.compile(r"(?:^|\.)(?:node|host|system)\.", re.I)


@dataclass
class ServiceSignals:
    """Scores per service (pandas Series indexed by service) plus details for evidence."""

    log_mix: pd.Series
    error_logs: pd.Series
    op_mix: pd.Series
    latency: pd.Series
    resource: pd.Series
    network: pd.Series
    self_time: pd.Series
    silence: pd.Series
    log_invariant: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    details: dict = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame({"log_mix": self.log_mix, "error_logs": self.error_logs, "op_mix": self.op_mix,
                           "latency": self.latency, "resource": self.resource, "network": self.network,
                           "self_time": self.self_time, "silence": self.silence,
                           "log_invariant": self.log_invariant})
        return df.fillna(0.0).clip(lower=0.0, upper=CAP)


def _width(start_ns: int, end_ns: int) -> int:
    """Bucket width: one minute, or a third of a short window."""
    return int(min(60e9, max((end_ns - start_ns) / 3, 5e9)))


def log_signals(logs: pd.DataFrame, start_ns: int, end_ns: int) -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    """(template-mix score, error-log rate score, mix details) per service."""
    width = _width(start_ns, end_ns)
    logs = logs.dropna(subset=["template_id"])
    mix = mix_anomaly(logs, "service", "template_id", start_ns, end_ns, width)
    err = logs.assign(err=(logs["severity_number"] >= ERROR_SEVERITY).map({True: "error", False: "other"}))
    err_mix = mix_anomaly(err, "service", "err", start_ns, end_ns, width)
    # only an *increase* in the share of error lines counts here
    err_score = err_mix["score"].where((err_mix["top_key"] == "error") == (err_mix["top_z"] > 0), 0.0)
    return mix["score"], err_score, mix


def span_signals(spans: pd.DataFrame, scored: pd.DataFrame | None, start_ns: int, end_ns: int
                 ) -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    """(operation-mix score, latency-origin score, scored window spans) per service.

    The operation mix keys each span by name and error status, so new operations, vanished
    ones and a rising share of failing calls all show. The latency score counts window spans
    the IsolationForest flags whose *self* time is high (the time was spent here, not waiting
    on a callee), against the model's expected 1% rate (binomial z).
    """
    width = _width(start_ns, end_ns)
    keyed = spans.assign(op=spans["name"] + np.where(spans["status_code"] == 2, " [error]", ""))
    op = mix_anomaly(keyed, "service", "op", start_ns, end_ns, width, time_col="start_ns")
    if scored is None or scored.empty:
        return op["score"], pd.Series(dtype=float), op
    origin = scored["anomalous"] & (scored["self_z"] >= 2.0)
    g = pd.DataFrame({"service": scored["service"], "o": origin}).groupby("service")["o"]
    n, k = g.size(), g.sum()
    p0 = 0.01
    z = (k / n - p0) / np.sqrt(p0 * (1 - p0) / n)
    z = z.where(k >= 3, 0.0)
    return op["score"], z, op


def metric_signals(metrics: pd.DataFrame, start_ns: int, end_ns: int, baseline: pd.DataFrame | None = None
                   ) -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    """(resource score, network score, per-metric shifts) per service from gauges/sums.

    ``metrics`` are already ``as_rates``; ``baseline`` optional precomputed ``baseline_stats``.
    """
    if metrics.empty:
        empty = pd.Series(dtype=float)
        return empty, empty, pd.DataFrame()
    in_w = ((metrics["time_ns"] >= start_ns) & (metrics["time_ns"] < end_ns)).to_numpy()
    shifts = value_shift(metrics, METRIC_KEYS, "value", in_w, baseline=baseline)
    shifts = shifts.dropna(subset=["z"])
    shifts = shifts[(shifts["z"] > 0) & ~shifts["name"].str.contains(SHARED_METRIC)]
    res = shifts[shifts["name"].str.contains(RESOURCE) & ~shifts["name"].str.contains(NETWORK)]
    net = shifts[shifts["name"].str.contains(NETWORK)]
    # robust z of a handful of scrapes is coarse: scale down so 3 MADs ~ 1 unit
    return (res.groupby("service")["z"].max() / 3.0, net.groupby("service")["z"].max() / 3.0, shifts)


def self_time_frame(spans: pd.DataFrame, self_ns: pd.Series) -> pd.DataFrame:
    return pd.DataFrame({"service": spans["service"].to_numpy(), "name": spans["name"].to_numpy(),
                         "v": np.log1p(self_ns.to_numpy(float))})


def self_time_signal(frame: pd.DataFrame, spans: pd.DataFrame, start_ns: int, end_ns: int,
                     baseline: pd.DataFrame | None = None, min_window: int = 5) -> tuple[pd.Series, pd.DataFrame]:
    """Per service: the largest rise of an operation's median log self time, in robust SDs of its baseline.

    Self time excludes the time spent waiting on callees, so this points at where latency
    originates rather than at everyone upstream who waited.
    """
    in_w = ((spans["start_ns"] >= start_ns) & (spans["start_ns"] < end_ns)).to_numpy()
    shifts = value_shift(frame, ["service", "name"], "v", in_w, min_baseline=20, window_quantile=SELF_QUANTILE,
                         baseline=baseline)
    shifts = shifts[(shifts["n_w"] >= min_window)].dropna(subset=["z"])
    # a floor on the spread: a 10% change is never "many SDs" however steady the baseline
    scale = np.maximum(shifts["b_mad"].fillna(0).to_numpy(), 0.1)
    shifts = shifts.assign(z=(shifts["w_median"] - shifts["b_median"]) / scale)
    shifts = shifts[shifts["z"] > 0]
    return shifts.groupby("service")["z"].max() / 2.0, shifts


def silence_signal(spans: pd.DataFrame, start_ns: int, end_ns: int) -> pd.Series:
    """Per service: how far its share of the system's spans dropped in the window (a service gone quiet)."""
    return share_drop(spans, "service", start_ns, end_ns, _width(start_ns, end_ns), time_col="start_ns") / 3.0


COUNTER_NAME = re.compile(r"(?:_total|\.count|restarts)$")


def as_rates(metrics: pd.DataFrame) -> pd.DataFrame:
    """Cumulative counters (OTLP sums, and names such as *_total or *restarts) become per-scrape increases,
    so a restart long ago does not make every later window look shifted."""
    kind = metrics["metric_type"] if "metric_type" in metrics else pd.Series("gauge", index=metrics.index)
    counter = (kind == "sum") | metrics["name"].str.contains(COUNTER_NAME, regex=True)
    if not counter.any():
        return metrics
    m = metrics[counter].sort_values(["service", "pod", "name", "time_ns"], kind="stable")
    m = m.assign(value=m.groupby([m["service"], m["pod"], m["name"]], sort=False)["value"].diff().clip(lower=0))
    return pd.concat([metrics[~counter], m.dropna(subset=["value"])])


def unreachable_signal(spans: pd.DataFrame, start_ns: int, end_ns: int) -> pd.Series:
    """Per called service: failing client calls that never reached it (no span below them), in the window
    against the baseline rate - the mark of a callee that is down or refusing connections."""
    if spans.empty or "attributes" not in spans:
        return pd.Series(dtype=float)
    failed_client = spans[(spans["status_code"] == 2) & (spans["kind"] == 3)]
    if failed_client.empty:
        return pd.Series(dtype=float)
    leaf_fail = failed_client[~failed_client["span_id"].isin(spans["parent_span_id"])]
    if leaf_fail.empty:
        return pd.Series(dtype=float)
    peer = leaf_fail["attributes"].fillna("").astype(str).str.extract(r'"(?:peer\.service|server\.address)":"([^"]+)"')[0]
    leaf = pd.DataFrame({"service": peer.to_numpy(), "start_ns": leaf_fail["start_ns"].to_numpy()}).dropna()
    if leaf.empty:
        return pd.Series(dtype=float)
    width = _width(start_ns, end_ns)
    in_w = ((leaf["start_ns"] >= start_ns) & (leaf["start_ns"] < end_ns)).to_numpy()
    n_w = leaf[in_w].groupby("service").size() / max((end_ns - start_ns) / width, 1e-9)
    all_buckets = np.unique(spans["start_ns"].to_numpy() // width)
    n_b = max(len(all_buckets) - (end_ns - start_ns) / width, 1.0)
    base = leaf[~in_w].groupby("service").size() / n_b
    df = pd.concat([n_w.rename("w"), base.rename("b")], axis=1).fillna(0.0)
    return ((df["w"] - df["b"]) / np.sqrt(df["b"] + 1.0)).clip(lower=0)


def span_patterns(logs: pd.DataFrame) -> pd.DataFrame:
    """One row per (service, trace): the set of templates the service logged for that request.

    A code path that is normally taken together with another (this line, then that one) shows as
    a change in these per-request patterns even when each template's overall share hardly moves.
    """
    lg = logs.dropna(subset=["template_id"])
    lg = lg[lg["trace_id"] != ""]
    if lg.empty:
        return pd.DataFrame(columns=["service", "pattern", "time_ns"])
    g = lg.groupby(["service", "trace_id"], sort=False)
    pattern = g["template_id"].agg(lambda t: ",".join(map(str, sorted(set(int(x) for x in t)))))
    out = pd.DataFrame({"pattern": pattern, "time_ns": g["time_ns"].min()}).reset_index()
    return out[["service", "pattern", "time_ns"]]


def invariant_signal(index, start_ns: int, end_ns: int) -> tuple[pd.Series, pd.DataFrame]:
    """Per service: how far the window breaks a log invariant (a log statement and another statement or
    span that a request normally has equally often; see ``rca.anomaly.invariants``), in binomial z halved
    like the self-time shift."""
    broken = index.score(start_ns, end_ns)
    return broken["score"] / 2.0, broken


def pattern_signal(patterns: pd.DataFrame, start_ns: int, end_ns: int) -> tuple[pd.Series, pd.DataFrame]:
    """Per service: the shift in its mix of per-request log patterns (see ``span_patterns``)."""
    mix = mix_anomaly(patterns, "service", "pattern", start_ns, end_ns, _width(start_ns, end_ns))
    return mix["score"], mix
