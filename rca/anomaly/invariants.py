"""Log invariants: a log statement and another event that one request normally has equally often.

Code that logs line A and then, further down the same path, line B leaves the two in
a fixed relation per request: as many Bs as As. The same holds between a log line and
the span of the operation that writes it. When an exception (or an early return) cuts
that path, requests start to carry an A without its B, while each template's overall
share of the service's logs may hardly move. This is the invariant mining of Lou et al.
("Mining Invariants from Console Logs for System Problem Detection", USENIX ATC 2010),
kept to its simplest, most common form: count(A) == count(B) in a request, where A is a
log statement (``LogTemplates.statements``: templates with the same code location are one) and B is
another statement or a span name.

``InvariantIndex`` is built once over all loaded telemetry: per service, the requests
(trace ids) in time order, the candidate pairs (events that each appear in enough
requests and usually agree), and running totals of how many requests involve each pair
and how many break it. Scoring a window is then a handful of array lookups: the
window's rate of broken requests against the rest (the baseline) as a binomial z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MIN_SUPPORT = 30  # baseline requests that involve a pair before it can count as an invariant
MAX_BASE_RATE = 0.10  # a pair broken in more than 10% of baseline requests is no invariant
RATE_FLOOR = 0.01  # a baseline of a few hundred requests cannot prove a rate below 1%
MIN_BROKEN = 3  # a couple of broken requests prove nothing
MIN_WINDOW = 5
MAX_PAIRS = 400  # per service, the tightest candidates (bounds memory on chatty services)
COLUMNS = ["score", "a", "b", "broken", "requests", "base_rate", "base_requests"]
LOG, SPAN = "log:", "span:"  # event keys: a log template id, or a span (operation) name
SPAN_PAIRS = False  # pairs of two span names are left to the operation mix


def parse_key(key: str) -> tuple[str, str]:
    """("log", template id) or ("span", operation name)."""
    return ("log", key[len(LOG):]) if key.startswith(LOG) else ("span", key[len(SPAN):])


def _log_events(logs: pd.DataFrame, statement: dict[int, int] | None) -> pd.DataFrame:
    lg = logs.dropna(subset=["template_id"]) if not logs.empty else logs
    if lg.empty:
        return pd.DataFrame(columns=["service", "trace_id", "key", "time_ns"])
    ids = lg["template_id"].astype("int64")
    if statement:
        ids = ids.map(statement).fillna(ids).astype("int64")
    return pd.DataFrame({"service": lg["service"].to_numpy(), "trace_id": lg["trace_id"].to_numpy(),
                         "key": LOG + ids.astype(str).to_numpy(dtype=object), "time_ns": lg["time_ns"].to_numpy()})


@dataclass
class _ServicePairs:
    times: np.ndarray  # request (trace) start, sorted
    traces: np.ndarray  # trace ids in that order
    a: np.ndarray  # template id of each candidate pair
    b: np.ndarray
    involved: np.ndarray  # running totals (n_requests + 1, n_pairs): requests logging a or b
    broken: np.ndarray  # ... of those where count(a) != count(b)
    counts: np.ndarray  # (n_requests, n_templates) per-request template counts
    templates: list[str]  # the event keys (columns of ``counts``)


def callee_failures(spans: pd.DataFrame) -> pd.DataFrame:
    """(service, trace_id) pairs where the service saw a call below it fail: one of its own client spans
    failed, or a failing span of another service sits under one of its spans in that trace."""
    cols = ["service", "trace_id"]
    failed = spans["status_code"] == 2
    if not failed.any():
        return pd.DataFrame(columns=cols)
    client = spans[failed & (spans["kind"] == 3)]
    pairs = set(zip(client["service"], client["trace_id"]))
    traces = spans.loc[failed, "trace_id"].unique()
    sub = spans[spans["trace_id"].isin(traces)]
    parent = {(t, sid): (p, svc) for t, sid, p, svc in zip(sub["trace_id"], sub["span_id"], sub["parent_span_id"],
                                                           sub["service"])}
    for t, p, svc in zip(sub.loc[failed, "trace_id"], sub.loc[failed, "parent_span_id"], sub.loc[failed, "service"]):
        seen = 0
        while p and seen < 256:  # up the tree: every other service above waited on this failure
            up = parent.get((t, p))
            if up is None:
                break
            p, caller = up
            if caller != svc:
                pairs.add((caller, t))
            seen += 1
    return pd.DataFrame(sorted(pairs), columns=cols)


class InvariantIndex:
    """Candidate count invariants per service, with running totals over time (see module doc)."""

    def __init__(self, logs: pd.DataFrame, spans: pd.DataFrame | None = None, min_support: int = MIN_SUPPORT,
                 max_base_rate: float = MAX_BASE_RATE, span_pairs: bool = SPAN_PAIRS,
                 statement: dict[int, int] | None = None):
        self.min_support = min_support
        self.max_base_rate = max_base_rate
        self.span_pairs = span_pairs
        self.services: dict[str, _ServicePairs] = {}
        events = [_log_events(logs, statement)]
        if spans is not None and not spans.empty:
            events.append(pd.DataFrame({"service": spans["service"].to_numpy(), "trace_id": spans["trace_id"].to_numpy(),
                                        "key": SPAN + spans["name"].astype(str).to_numpy(dtype=object),
                                        "time_ns": spans["start_ns"].to_numpy()}))
        ev = pd.concat(events, ignore_index=True)
        ev = ev[ev["trace_id"] != ""]
        if spans is not None and not spans.empty and not ev.empty:
            # a request whose own call to another service failed breaks the caller's code path too, but that
            # is the callee's doing: such requests say nothing about the caller's invariants, either way
            waited = callee_failures(spans)
            if not waited.empty:
                hit = pd.MultiIndex.from_frame(ev[["service", "trace_id"]]).isin(
                    pd.MultiIndex.from_frame(waited[["service", "trace_id"]]))
                ev = ev[~hit]
        if ev.empty:
            return
        per = (ev.groupby(["service", "trace_id", "key"], sort=False)
               .agg(n=("time_ns", "size"), t=("time_ns", "min")).reset_index())
        for service, sub in per.groupby("service", sort=False):
            if not sub["key"].str.startswith(LOG).any():
                continue
            pairs = self._pairs(sub)
            if pairs is not None:
                self.services[service] = pairs

    def _pairs(self, sub: pd.DataFrame) -> _ServicePairs | None:
        support = sub.groupby("key").size()
        keep = support.index[support >= self.min_support]
        if len(keep) < 2:
            return None
        sub = sub[sub["key"].isin(keep)]
        grid = sub.pivot_table(index="trace_id", columns="key", values="n", aggfunc="sum", fill_value=0)
        is_log = np.array([str(k).startswith(LOG) for k in grid.columns])
        start = sub.groupby("trace_id")["t"].min().reindex(grid.index).to_numpy()
        order = np.argsort(start, kind="stable")
        counts = grid.to_numpy(np.int32)[order]
        present = counts > 0
        n_t = counts.shape[1]
        ia, ib, inv, brk = [], [], [], []
        for i in range(n_t - 1):
            rel = present[:, i:i + 1] | present[:, i + 1:]
            bad = (counts[:, i:i + 1] != counts[:, i + 1:]) & rel
            n_rel, n_bad = rel.sum(axis=0), bad.sum(axis=0)
            # loose pre-selection over all requests; the baseline proper is checked per window
            ok = (n_rel >= self.min_support) & (n_bad <= 2 * self.max_base_rate * n_rel)
            if not self.span_pairs:  # at least one side must be a log line
                ok &= is_log[i] | is_log[i + 1:]
            ok = np.flatnonzero(ok)
            for j in ok:
                ia.append(i)
                ib.append(i + 1 + j)
                inv.append(rel[:, j])
                brk.append(bad[:, j])
        if not ia:
            return None
        if len(ia) > MAX_PAIRS:
            rate = np.array([b.sum() / max(r.sum(), 1) for r, b in zip(inv, brk)])
            top = np.sort(np.argsort(rate, kind="stable")[:MAX_PAIRS])
            ia, ib = [ia[k] for k in top], [ib[k] for k in top]
            inv, brk = [inv[k] for k in top], [brk[k] for k in top]
        zero = np.zeros((1, len(ia)), np.int32)
        involved = np.vstack([zero, np.cumsum(np.column_stack(inv), axis=0, dtype=np.int32)])
        broken = np.vstack([zero, np.cumsum(np.column_stack(brk), axis=0, dtype=np.int32)])
        cols = [str(c) for c in grid.columns]
        return _ServicePairs(start[order], grid.index.to_numpy()[order], np.array([cols[i] for i in ia], object),
                             np.array([cols[j] for j in ib], object), involved, broken, counts, cols)

    def score(self, start_ns: int, end_ns: int) -> pd.DataFrame:
        """Per service: the most broken invariant in ``[start_ns, end_ns)`` against the rest of the data.

        ``score`` is the binomial z of the window's broken-request count given the baseline rate
        (floored at ``RATE_FLOOR``); ``a``/``b`` the template pair; ``broken``/``requests`` in the
        window; ``base_rate``/``base_requests`` outside it. Services with no broken invariant are absent.
        """
        rows, index = [], []
        for service, p in self.services.items():
            lo, hi = np.searchsorted(p.times, [start_ns, end_ns])
            n_w = p.involved[hi] - p.involved[lo]
            k_w = p.broken[hi] - p.broken[lo]
            n_b = p.involved[-1] - n_w
            k_b = p.broken[-1] - k_w
            rate = np.maximum((k_b + 1.0) / (n_b + 2.0), RATE_FLOOR)
            z = (k_w - n_w * rate) / np.sqrt(np.maximum(n_w, 1) * rate * (1 - rate))
            valid = (n_b >= self.min_support) & (rate <= self.max_base_rate) & (n_w >= MIN_WINDOW) & (k_w >= MIN_BROKEN)
            z = np.where(valid, z, 0.0)
            j = int(z.argmax())
            if z[j] <= 0:
                continue
            rows.append((float(z[j]), p.a[j], p.b[j], int(k_w[j]), int(n_w[j]), float(rate[j]), int(n_b[j])))
            index.append(service)
        return pd.DataFrame(rows, columns=COLUMNS, index=pd.Index(index, name="service"))

    def broken_requests(self, service: str, a: str, b: str, start_ns: int, end_ns: int, limit: int = 3) -> list[str]:
        """Trace ids in the window where ``a`` and ``b`` were logged a different number of times."""
        p = self.services.get(service)
        if p is None or a not in p.templates or b not in p.templates:
            return []
        lo, hi = np.searchsorted(p.times, [start_ns, end_ns])
        ca, cb = p.counts[lo:hi, p.templates.index(a)], p.counts[lo:hi, p.templates.index(b)]
        return [str(t) for t in p.traces[lo:hi][ca != cb][:limit]]
