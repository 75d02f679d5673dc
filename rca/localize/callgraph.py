"""The service call graph seen in spans, and how anomalies propagate along it.

A caller waits on, retries and logs the failures of its callees, so an anomalous
service whose anomalous callee explains it is a *propagation*, not a root cause;
a callee that explains its callers' anomalies outranks them.
"""

from __future__ import annotations

import pandas as pd


def service_edges(spans: pd.DataFrame) -> pd.DataFrame:
    """caller, callee, n_calls, n_errors: parent span's service -> child span's service (self-calls dropped)."""
    cols = ["caller", "callee", "n_calls", "n_errors"]
    if spans.empty:
        return pd.DataFrame(columns=cols)
    parents = spans[["trace_id", "span_id", "service"]].rename(columns={"span_id": "parent_span_id",
                                                                       "service": "caller"})
    kids = spans.loc[spans["parent_span_id"] != "", ["trace_id", "parent_span_id", "service", "status_code"]]
    m = kids.merge(parents, on=["trace_id", "parent_span_id"]).rename(columns={"service": "callee"})
    m = m[m["caller"] != m["callee"]]
    if m.empty:
        return pd.DataFrame(columns=cols)
    m["err"] = (m["status_code"] == 2).astype(int)
    return m.groupby(["caller", "callee"]).agg(n_calls=("err", "size"), n_errors=("err", "sum")).reset_index()


class CallGraph:
    def __init__(self, edges: pd.DataFrame):
        self.callees: dict[str, set[str]] = {}
        self.callers: dict[str, set[str]] = {}
        for a, b in zip(edges["caller"], edges["callee"]):
            self.callees.setdefault(a, set()).add(b)
            self.callers.setdefault(b, set()).add(a)

    def descendants(self, service: str) -> set[str]:
        """Every service reachable below ``service`` (what it calls, directly or not)."""
        return _reach(service, self.callees)

    def ancestors(self, service: str) -> set[str]:
        """Every service above ``service`` (whose requests reach it)."""
        return _reach(service, self.callers)


def _reach(start: str, edges: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for nxt in edges.get(stack.pop(), ()):
            if nxt not in seen and nxt != start:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def propagate(own: dict[str, float], graph: CallGraph, threshold: float, explained_ratio: float = 0.3,
              discount: float = 0.3, caller_credit: float = 0.2) -> tuple[dict[str, float], dict[str, str]]:
    """Adjust per-service anomaly scores along the call graph.

    A service with an anomalous descendant whose score is at least
    ``explained_ratio`` of its own is *explained*: its score is multiplied by ``discount``
    and its role is ``propagation`` (``impact`` when nothing calls it). A root candidate (only) gains
    ``caller_credit`` x the scores of its anomalous callers (capped at its own score each):
    upstream symptoms that it explains. Returns (scores, roles).
    """
    anomalous = {s for s, v in own.items() if v >= threshold}
    final, roles = {}, {}
    for s, v in own.items():
        below = graph.descendants(s) & anomalous
        explained = any(own[d] >= explained_ratio * v for d in below)
        up = [c for c in graph.callers.get(s, ()) if c in anomalous]
        credit = 0.0 if explained else caller_credit * sum(min(own[c], v) for c in up)
        final[s] = v * (discount if explained else 1.0) + credit
        if explained:
            roles[s] = "propagation" if graph.callers.get(s) else "impact"
        else:
            roles[s] = "root_cause"
    return final, roles
