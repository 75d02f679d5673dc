"""Robust change scores of a window against the same key's own baseline.

- ``mix_anomaly``: a shift in the *mix* of keys within a group (log templates within a
  service, operations within a service), calibrated against how much that group's mix
  normally moves from one time bucket to the next.
- ``value_shift``: window median of a value (self time, a metric) against the baseline's
  median and MAD.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MAD_SCALE = 1.4826
# smallest spread of a group's bucket-to-bucket shifts: a perfectly steady mix that moves is news, but bounded news
SHIFT_FLOOR = 1.0
MIN_COUNT = 3
MIX_COLUMNS = ["score", "raw", "top_key", "top_z", "w_share", "b_share", "w_count",
               "up_key", "up_z", "up_w_share", "up_b_share"]


def mix_anomaly(
    events: pd.DataFrame,
    group: str,
    key: str,
    start_ns: int,
    end_ns: int,
    width_ns: int,
    time_col: str = "time_ns",
    min_events: int = 5,
    min_baseline_buckets: int = 4,
) -> pd.DataFrame:
    """Per group: how unusual the window's mix of ``key`` is, in units of the group's own variability.

    Time is cut into buckets of ``width_ns`` aligned on the window start. In every bucket
    where the group has at least ``min_events`` events, each key's share is compared to its
    median share over the baseline buckets (robust z with MAD plus a binomial floor); the
    bucket's shift is the largest |z|. The group's score is the largest shift among the
    window's buckets, standardized by the median and MAD of the baseline buckets' shifts —
    so a service whose mix always moves a lot needs a bigger move to stand out, and a
    template that vanishes while requests continue counts as much as one that appears.
    Returns one row per group (index ``group``) with ``MIX_COLUMNS``.
    """
    if events.empty:
        return pd.DataFrame(columns=MIX_COLUMNS).rename_axis(group)
    t = events[time_col].to_numpy()
    bucket = (t - start_ns) // width_ns
    n_wb = max(int(np.ceil((end_ns - start_ns) / width_ns)), 1)
    frame = pd.DataFrame({"g": events[group].to_numpy(), "k": events[key].to_numpy(), "b": bucket})
    counts = frame.groupby(["g", "k", "b"], sort=False).size()
    rows, index = [], []
    for g, sub in counts.groupby(level=0, sort=False):
        grid = sub.droplevel(0).unstack("b", fill_value=0)
        n = grid.sum(axis=0)
        grid = grid.loc[:, (n >= min_events).to_numpy()]
        cols = np.asarray(grid.columns)
        in_w = (cols >= 0) & (cols < n_wb)
        if not in_w.any() or (~in_w).sum() < min_baseline_buckets:
            continue
        n = grid.to_numpy(float).sum(axis=0)
        shares = grid.to_numpy(float) / n
        base = shares[:, ~in_w]
        med = np.median(base, axis=1)[:, None]
        mad = (np.median(np.abs(base - med), axis=1) * MAD_SCALE)[:, None]
        se = np.sqrt(np.maximum(med * (1 - med), 1.0 / n[None, :]) / n[None, :])
        z = (shares - med) / (mad + se)
        # a couple of lines prove nothing: a key must occur MIN_COUNT times to count as grown,
        # and be expected MIN_COUNT times to count as gone
        counts = grid.to_numpy(float)
        z[(z > 0) & (counts < MIN_COUNT)] = 0.0
        z[(z < 0) & (med * n[None, :] < MIN_COUNT)] = 0.0
        shift = np.abs(z).max(axis=0)
        b_shift, w_shift = shift[~in_w], shift[in_w]
        b_med = np.median(b_shift)
        b_mad = np.median(np.abs(b_shift - b_med)) * MAD_SCALE
        j = np.flatnonzero(in_w)[int(w_shift.argmax())]
        k = int(np.abs(z[:, j]).argmax())
        u = int(z[:, j].argmax())  # the key that grew most: often the most telling (a new error line)
        # scale: the larger of the MAD and how far the baseline's unusual buckets (90th pct) already go,
        # so rare background events (one error line now and then) do not look like a shift
        b_q90 = np.quantile(b_shift, 0.9)
        score = (w_shift.max() - b_med) / max(b_mad, b_q90 - b_med, 0.1 * b_med, SHIFT_FLOOR)
        rows.append((float(score), float(w_shift.max()), grid.index[k], float(z[k, j]), float(shares[k, j]),
                     float(med[k, 0]), int(grid.iloc[k, j]), grid.index[u], float(z[u, j]), float(shares[u, j]),
                     float(med[u, 0])))
        index.append(g)
    return pd.DataFrame(rows, columns=MIX_COLUMNS, index=pd.Index(index, name=group))


def baseline_stats(values: pd.DataFrame, keys: list[str], value_col: str, quantile: float = 0.5) -> pd.DataFrame:
    """Per key: ``b_median`` (the given quantile), ``b_mad`` (around the median), ``b_std``, ``n_b``."""
    g = values.groupby(keys)[value_col]
    centre = g.median().rename("centre")
    dev = (values[value_col] - values[keys].join(centre, on=keys)["centre"]).abs()
    b_mad = (dev.groupby([values[k] for k in keys]).median() * MAD_SCALE).rename("b_mad")
    return pd.concat([g.quantile(quantile).rename("b_median"), b_mad, g.std().rename("b_std"),
                      g.size().rename("n_b")], axis=1)


def value_shift(values: pd.DataFrame, keys: list[str], value_col: str, in_window: np.ndarray,
                min_baseline: int = 5, window_quantile: float = 0.5,
                baseline: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per key: a window quantile of ``value_col`` (the median by default) vs the baseline -> robust z.

    The baseline is the same quantile of the values outside the window and their spread (MAD
    around the median, floored by half the standard deviation and 5% of the level), unless
    precomputed ``baseline`` stats (``baseline_stats``) are given. ``window_quantile=0.75``
    catches a change that covers only the later part of the window. Returns keys + ``w_median``,
    ``b_median``, ``b_mad``, ``n_w``, ``n_b``, ``z`` (NaN where the baseline has fewer than
    ``min_baseline`` values).
    """
    cols = keys + ["w_median", "b_median", "b_mad", "n_w", "n_b", "z"]
    if values.empty or not in_window.any():
        return pd.DataFrame(columns=cols)
    v = values[keys + [value_col]]
    wg = v.loc[in_window].groupby(keys)[value_col]
    w = pd.concat([wg.quantile(window_quantile).rename("w_median"), wg.size().rename("n_w")], axis=1)
    if baseline is None:
        baseline = baseline_stats(v.loc[~in_window], keys, value_col, window_quantile)
    df = w.join(baseline, how="left")
    df["n_b"] = df["n_b"].fillna(0)
    # floors: a mostly-flat series (MAD 0) still has some spread, and 5% of its level is never "many SDs"
    scale = np.maximum.reduce([df["b_mad"].fillna(0).to_numpy(), 0.05 * df["b_median"].abs().fillna(0).to_numpy(),
                               0.5 * df["b_std"].fillna(0).to_numpy()]) + 1e-9
    df["z"] = np.where(df["n_b"] >= min_baseline, (df["w_median"] - df["b_median"]) / scale, np.nan)
    return df.reset_index()[cols]


def share_drop(events: pd.DataFrame, group: str, start_ns: int, end_ns: int, width_ns: int,
               time_col: str = "time_ns", min_baseline_buckets: int = 4) -> pd.Series:
    """Per group: how far its share of all events fell in the window's emptiest bucket (robust z, >= 0).

    A service that goes silent (crashed, unreachable) while the rest of the system keeps
    running loses its share of spans; shares make this independent of traffic swings.
    """
    if events.empty:
        return pd.Series(dtype=float)
    t = events[time_col].to_numpy()
    bucket = (t - start_ns) // width_ns
    n_wb = max(int(np.ceil((end_ns - start_ns) / width_ns)), 1)
    grid = pd.DataFrame({"g": events[group].to_numpy(), "b": bucket}).groupby(["g", "b"]).size().unstack("b",
                                                                                                      fill_value=0)
    total = grid.sum(axis=0)
    grid = grid.loc[:, (total >= 20).to_numpy()]
    cols = np.asarray(grid.columns)
    in_w = (cols >= 0) & (cols < n_wb)
    if not in_w.any() or (~in_w).sum() < min_baseline_buckets:
        return pd.Series(dtype=float)
    n = grid.to_numpy(float).sum(axis=0)
    shares = grid.to_numpy(float) / n
    base = shares[:, ~in_w]
    med = np.median(base, axis=1)
    mad = np.median(np.abs(base - med[:, None]), axis=1) * MAD_SCALE
    low = shares[:, in_w].min(axis=1)
    se = np.sqrt(np.maximum(med * (1 - med), 1e-6) / n[in_w].min())
    z = (med - low) / (mad + se)
    return pd.Series(np.clip(z, 0, None), index=grid.index)
