"""Per-service anomaly signals for an incident window, each against the service's own baseline.

Every signal is a non-negative score in robust-z-like units (about 3 = clearly unusual).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rca.anomaly.shift import mix_anomaly, value_shift

ERROR_SEVERITY = 17
CAP = 30.0
RESOURCE = re.compile(r"cpu|mem|heap|gc|network|net\.|disk|io\.|thread|fd|restart|oom|load", re.I)
NETWORK = re.compile(r"network|net\.|tcp|latency\.client|rtt", re.I)
LATENCY_METRIC = re.compile(r"latency|duration", re.I)


@dataclass
class ServiceSignals:
    """Scores per service (pandas Series indexed by service) plus details for evidence."""

    log_mix: pd.Series
    error_logs: pd.Series
    op_mix: pd.Series
    latency: pd.Series
    resource: pd.Series
    network: pd.Series
    details: dict = field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame({"log_mix": self.log_mix, "error_logs": self.error_logs, "op_mix": self.op_mix,
                           "latency": self.latency, "resource": self.resource, "network": self.network})
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


def metric_signals(metrics: pd.DataFrame, start_ns: int, end_ns: int) -> tuple[pd.Series, pd.Series, pd.DataFrame]:
    """(resource score, network score, per-metric shifts) per service from gauges/sums."""
    if metrics.empty:
        empty = pd.Series(dtype=float)
        return empty, empty, pd.DataFrame()
    in_w = ((metrics["time_ns"] >= start_ns) & (metrics["time_ns"] < end_ns)).to_numpy()
    shifts = value_shift(metrics, ["service", "pod", "name"], "value", in_w)
    shifts = shifts.dropna(subset=["z"])
    shifts = shifts[shifts["z"] > 0]
    res = shifts[shifts["name"].str.contains(RESOURCE) & ~shifts["name"].str.contains(NETWORK)]
    net = shifts[shifts["name"].str.contains(NETWORK)]
    # robust z of a handful of scrapes is coarse: scale down so 3 MADs ~ 1 unit
    return (res.groupby("service")["z"].max() / 3.0, net.groupby("service")["z"].max() / 3.0, shifts)
