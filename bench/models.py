"""Span model on disk: rca's forest format (JSON + one .npz, no pickle) vs stdlib pickle, same forests, one run.

    .venv/bin/python bench/models.py [--forests 240] [--trees 60] [--rows 2000] [--repeat 3]

Fits ``--forests`` IsolationForests the way ``SpanAnomalyModel.fit`` does (``--trees`` trees,
``max_samples=min(256, rows)``, one forest per operation) on 5 features shaped like the span
features: log-scale self time and duration z-scores (correlated, heavier tail), a small integer
child-count difference, a rare 0/1 error flag and a capped error-log count, so trees see ties and
skew like real data. Then writes the same ``{name: forest}`` dict with ``rca.anomaly.forest_io``
and with ``pickle.dumps`` (the baseline; rca never loads pickles) and reports file size, save time
and load time (best of ``--repeat``, interleaved, files read from disk each time), each as a ratio
to pickle. Scores of every forest after loading are checked to equal the fitted forest's exactly,
for both formats.
"""

from __future__ import annotations

import argparse
import os
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np


def span_like(n: int, rng: np.random.Generator) -> np.ndarray:
    """Rows like SpanAnomalyModel's normalized features: self_z, duration_z, children_d, error, error_logs."""
    self_z = rng.standard_t(4, n) * rng.uniform(0.5, 1.5)
    duration_z = 0.8 * self_z + 0.6 * rng.standard_t(4, n)
    children_d = rng.choice([0, 0, 0, 0, 1, -1, 2], n).astype(float)
    error = (rng.random(n) < rng.uniform(0.0, 0.03)).astype(float)
    error_logs = np.minimum(error * rng.poisson(2.0, n), 5.0)
    return np.column_stack([self_z, duration_z, children_d, error, error_logs])


def fit_forests(n_forests: int, n_trees: int, n_rows: int, seed: int) -> tuple[dict, dict]:
    from sklearn.ensemble import IsolationForest

    rng = np.random.default_rng(seed)
    forests, probes, start = {}, {}, time.perf_counter()
    for i in range(n_forests):
        data = span_like(n_rows, rng)
        key = f"service{i % 17}\x1fGET /api/v1/op{i}"
        forests[key] = IsolationForest(n_estimators=n_trees, max_samples=min(256, n_rows), random_state=seed).fit(data)
        probes[key] = span_like(200, rng) * 1.5  # wider than training: leaves on both sides of every split
        if (i + 1) % max(1, n_forests // 8) == 0 or i + 1 == n_forests:
            print(f"  fitted {i + 1}/{n_forests} forests ({time.perf_counter() - start:.1f} s)", flush=True)
    return forests, probes


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--forests", type=int, default=240)
    ap.add_argument("--trees", type=int, default=60)
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import sklearn

    from rca.anomaly.forest_io import load_forests, save_forests

    print(f"forests={args.forests} trees={args.trees} rows={args.rows} features=5 "
          f"scikit-learn {sklearn.__version__} numpy {np.__version__}")
    forests, probes = fit_forests(args.forests, args.trees, args.rows, args.seed)
    expected = {k: f.score_samples(probes[k]) for k, f in forests.items()}
    n_nodes = sum(e.tree_.node_count for f in forests.values() for e in f.estimators_)
    print(f"  {n_nodes:,} tree nodes in all")

    with tempfile.TemporaryDirectory() as tmp:
        ours_path, pickle_path = Path(tmp) / "spans.forests.npz", Path(tmp) / "spans.pkl"

        save = {"rca": lambda: save_forests(forests, ours_path),
                "pickle": lambda: pickle_path.write_bytes(pickle.dumps(forests, protocol=pickle.HIGHEST_PROTOCOL))}
        load = {"rca": lambda: load_forests(ours_path)[0], "pickle": lambda: pickle.loads(pickle_path.read_bytes())}
        save_s, load_s, loaded = {"rca": [], "pickle": []}, {"rca": [], "pickle": []}, {}
        for _ in range(args.repeat):  # interleaved: both see the same machine load
            for fmt in ("rca", "pickle"):
                save_s[fmt].append(timed(save[fmt])[0])
            for fmt in ("rca", "pickle"):
                t, loaded[fmt] = timed(load[fmt])
                load_s[fmt].append(t)
        size = {"rca": os.path.getsize(ours_path), "pickle": os.path.getsize(pickle_path)}

    same = {}
    for fmt, back in loaded.items():
        same[fmt] = list(back) == list(forests) and all(
            np.array_equal(back[k].score_samples(probes[k]), expected[k]) for k in forests)

    print(f"{'format':<8}{'size MB':>10}{'vs pickle':>11}{'save s':>9}{'vs pickle':>11}{'load s':>9}"
          f"{'vs pickle':>11}  scores identical")
    base_size, base_save, base_load = size["pickle"], min(save_s["pickle"]), min(load_s["pickle"])
    for fmt in ("pickle", "rca"):
        sv, ld = min(save_s[fmt]), min(load_s[fmt])
        print(f"{fmt:<8}{size[fmt] / 1e6:>10.2f}{size[fmt] / base_size:>10.3f}x{sv:>9.3f}{sv / base_save:>10.2f}x"
              f"{ld:>9.3f}{ld / base_load:>10.2f}x  {'yes' if same[fmt] else 'NO'}")
    print(f"rca file is {base_size / size['rca']:.1f}x smaller; loads {base_load / min(load_s['rca']):.2f}x "
          f"as fast as pickle (>1 = faster)")
    if not all(same.values()):
        raise SystemExit("scores differ after loading")


if __name__ == "__main__":
    main()
