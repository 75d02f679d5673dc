"""Self time of spans: duration minus the union of the children's intervals, clipped to the span."""

from __future__ import annotations

import numpy as np
import pandas as pd


def self_times(spans: pd.DataFrame) -> pd.Series:
    """Per span (aligned with ``spans.index``): ``end_ns - start_ns`` minus the time covered by its children.

    Vectorized over all traces at once: children are joined to parents on
    (trace_id, parent_span_id), clipped to the parent's interval, and the union
    of each parent's child intervals is measured with a sorted running max.
    """
    duration = (spans["end_ns"] - spans["start_ns"]).astype("int64")
    if spans.empty:
        return duration
    parents = pd.DataFrame({
        "trace_id": spans["trace_id"].to_numpy(), "span_id": spans["span_id"].to_numpy(),
        "p_start": spans["start_ns"].to_numpy(np.int64), "p_end": spans["end_ns"].to_numpy(np.int64),
        "row": np.arange(len(spans)),
    }).drop_duplicates(["trace_id", "span_id"])
    children = pd.DataFrame({
        "trace_id": spans["trace_id"].to_numpy(), "span_id": spans["parent_span_id"].to_numpy(),
        "c_start": spans["start_ns"].to_numpy(np.int64), "c_end": spans["end_ns"].to_numpy(np.int64),
    })
    children = children[children["span_id"] != ""]
    m = children.merge(parents, on=["trace_id", "span_id"], how="inner")
    covered = np.zeros(len(spans), np.int64)
    if not m.empty:
        m["cs"] = np.maximum(m["c_start"], m["p_start"])
        m["ce"] = np.minimum(m["c_end"], m["p_end"])
        m = m[m["ce"] > m["cs"]].sort_values(["row", "cs"], kind="stable")
        if not m.empty:
            reach = m.groupby("row", sort=False)["ce"].cummax()
            prev = reach.groupby(m["row"], sort=False).shift(1)
            floor = np.iinfo(np.int64).min  # exact int64 arithmetic: ns timestamps overflow float64 precision
            begin = np.maximum(m["cs"].to_numpy(np.int64), prev.fillna(floor).to_numpy(np.int64))
            contrib = np.clip(m["ce"].to_numpy(np.int64) - begin, 0, None)
            per_row = pd.Series(contrib).groupby(m["row"].to_numpy()).sum()
            covered[per_row.index.to_numpy()] = per_row.to_numpy()
    return pd.Series(duration.to_numpy() - covered, index=spans.index, name="self_time_ns")
