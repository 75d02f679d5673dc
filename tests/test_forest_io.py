"""IsolationForests saved as JSON + one .npz (no pickle) load back scoring exactly as fitted; bad files are refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest

from rca.anomaly.forest_io import load_forests, save_forests
from rca.anomaly.spans import LEGACY_MODEL_FILE, MODEL_FILE, PARAMS, SpanAnomalyModel
from rca.errors import InvalidInput, NotFitted

S = 1_000_000_000


@pytest.fixture(scope="module")
def forests():
    rng = np.random.RandomState(0)
    named = pd.DataFrame(rng.normal(size=(150, 3)), columns=["a", "b", "c"])
    return {
        "plain": IsolationForest(n_estimators=12, random_state=0).fit(rng.normal(size=(400, 5))),
        "subsampled": IsolationForest(n_estimators=7, max_samples=40, max_features=0.5, contamination=0.05,
                                      random_state=1).fit(rng.normal(size=(200, 8))),
        "float_samples": IsolationForest(n_estimators=5, max_samples=0.3, random_state=2).fit(rng.normal(size=(90, 2))),
        "one_row": IsolationForest(n_estimators=3, max_samples=1, random_state=3).fit(rng.normal(size=(4, 1))),
        "named\x1fop": IsolationForest(n_estimators=4, random_state=4).fit(named),
    }


def _probe(forest, rng):
    X = rng.normal(scale=3.0, size=(500, forest.n_features_in_))
    X[::9, 0] = np.nan  # missing values take the missing_go_to_left branch
    if hasattr(forest, "feature_names_in_"):
        return pd.DataFrame(X, columns=forest.feature_names_in_)
    return X


def test_round_trip_scores_exactly_as_fitted(tmp_path, forests):
    path = tmp_path / "f.npz"
    save_forests(forests, path)
    back, extra = load_forests(path)
    assert list(back) == list(forests) and extra is None
    rng = np.random.RandomState(7)
    for key, forest in forests.items():
        X = _probe(forest, rng)
        again = back[key]
        assert type(again) is IsolationForest
        assert np.array_equal(forest.score_samples(X), again.score_samples(X)), key
        assert np.array_equal(forest.decision_function(X), again.decision_function(X)), key
        assert np.array_equal(forest.predict(X), again.predict(X)), key
        for a, b in zip(forest.estimators_samples_, again.estimators_samples_):
            assert np.array_equal(a, b)
        X_sub = np.asarray(X)  # each tree sees its feature subset, as IsolationForest hands it over
        for est, est_back, cols in zip(forest.estimators_, again.estimators_, forest.estimators_features_):
            assert est_back.tree_.max_depth == est.tree_.max_depth
            paths = est.decision_path(X_sub[:, cols]), est_back.decision_path(X_sub[:, cols])
            assert (paths[0] != paths[1]).nnz == 0 and paths[0].nnz == paths[1].nnz > 0, key
    assert list(back["named\x1fop"].feature_names_in_) == ["a", "b", "c"]


def test_extra_is_saved_in_the_same_file(tmp_path, forests):
    path = tmp_path / "f.npz"
    extra = {"thresholds": {"plain": -0.1 / 3, "x\x1fy": 1e-300}, "params": {"n": 3, "q": None}}
    save_forests({"plain": forests["plain"]}, path, extra=extra)
    back, again = load_forests(path)
    assert again == extra and list(back) == ["plain"]
    before = path.read_bytes()
    with pytest.raises(InvalidInput, match="JSON"):
        save_forests({"plain": forests["plain"]}, path, extra={"x": object()})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["f.npz"]


def test_file_is_plain_arrays_readable_without_pickle(tmp_path, forests):
    path = tmp_path / "f.npz"
    save_forests(forests, path)
    with np.load(path) as z:  # allow_pickle=False is numpy's default
        kinds = {name: z[name].dtype.kind for name in z.files}
        meta = json.loads(z["meta"].tobytes())
    assert "O" not in kinds.values() and len(kinds) < 20  # few large arrays, not one per tree
    assert meta["sklearn_version"] and [f["key"] for f in meta["forests"]] == list(forests)
    (tmp_path / "other").write_bytes(b"")
    assert path.stat().st_mode == (tmp_path / "other").stat().st_mode  # permissions as any saved file


def test_span_model_round_trip_and_old_format(tmp_path):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(200):
        t, d = i * S, int(rng.lognormal(np.log(5e6), 0.2))
        rows.append((f"{i:032x}", f"{2 * i:016x}", "", "fe", "GET /", 2, t, t + d + 2_000_000, 0, "[]"))
        rows.append((f"{i:032x}", f"{2 * i + 1:016x}", f"{2 * i:016x}", "db", "SELECT", 3, t + 1_000_000,
                     t + 1_000_000 + d, 0, "[]"))
    spans = pd.DataFrame(rows, columns=["trace_id", "span_id", "parent_span_id", "service", "name", "kind",
                                        "start_ns", "end_ns", "status_code", "events"])
    model = SpanAnomalyModel(n_estimators=10, random_state=0).fit(spans)
    probe = spans.copy()
    probe.loc[probe["service"] == "db", "end_ns"] += rng.integers(0, 50_000_000, (probe["service"] == "db").sum())
    model.save(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [MODEL_FILE]  # forests and statistics: one file
    again = SpanAnomalyModel.load(tmp_path)
    pd.testing.assert_frame_equal(again.score_samples(probe), model.score_samples(probe), check_exact=True)
    pd.testing.assert_frame_equal(again.op_stats_, model.op_stats_, check_exact=True, check_names=False)
    assert again.thresholds_ == model.thresholds_ and vars(again).keys() == vars(model).keys()
    assert all(getattr(again, k) == getattr(model, k) for k in PARAMS)

    (tmp_path / LEGACY_MODEL_FILE).write_bytes(b"older rca")
    (tmp_path / MODEL_FILE).unlink()
    with pytest.raises(NotFitted, match="rca train"):
        SpanAnomalyModel.load(tmp_path)
    model.save(tmp_path)  # a new save replaces the old file
    assert not (tmp_path / LEGACY_MODEL_FILE).exists()



def _edit_state(path, edit):
    arrays = _arrays(path)
    meta = _meta(arrays)
    edit(meta)
    np.savez(path, **_with_meta(arrays, meta))


STATE_TAMPERINGS = {
    "no statistics": lambda m: m.pop("extra"),
    "threshold missing": lambda m: m["extra"]["thresholds"].pop("__shared__"),
    "threshold not a number": lambda m: m["extra"]["thresholds"].update(__shared__="low"),
    "params not a dict": lambda m: m["extra"].update(params=[1, 2]),
    "unknown parameter": lambda m: m["extra"]["params"].update(max_depth=3),
    "missing parameter": lambda m: m["extra"]["params"].pop("n_estimators"),
    "parameter of the wrong type": lambda m: m["extra"]["params"].update(n_estimators="60"),
    "bool parameter": lambda m: m["extra"]["params"].update(min_samples=True),
    "quantile out of range": lambda m: m["extra"]["params"].update(contamination_quantile=3.0),
    "negative random state": lambda m: m["extra"]["params"].update(random_state=-1),
    "op stats missing": lambda m: m["extra"].pop("op_stats"),
    "op stats columns": lambda m: m["extra"]["op_stats"].update(columns=["a", "b", "c", "d", "e", "f"]),
    "op stats short row": lambda m: m["extra"]["op_stats"]["data"][0].pop(),
    "op stats text value": lambda m: m["extra"]["op_stats"]["data"][0].__setitem__(0, "x"),
    "op stats without a modelled operation": lambda m: m["extra"]["op_stats"].update(
        index=[f"other{i}" for i in range(len(m["extra"]["op_stats"]["index"]))]),
    "extra not a dict": lambda m: m.update(extra=[1]),
}


@pytest.mark.parametrize("name", list(STATE_TAMPERINGS))
def test_tampered_span_model_state_is_refused(tmp_path, name):
    rng = np.random.default_rng(1)
    t = np.arange(120) * S
    d = rng.lognormal(np.log(5e6), 0.2, 120).astype(np.int64)
    spans = pd.DataFrame({"trace_id": [f"{i:032x}" for i in range(120)], "span_id": [f"{i:016x}" for i in range(120)],
                          "parent_span_id": "", "service": "fe", "name": "GET /", "kind": 2, "start_ns": t,
                          "end_ns": t + d, "status_code": 0, "events": "[]"})
    SpanAnomalyModel(n_estimators=5, min_samples=50, random_state=0).fit(spans).save(tmp_path)
    SpanAnomalyModel.load(tmp_path)  # the untampered file loads
    _edit_state(tmp_path / MODEL_FILE, STATE_TAMPERINGS[name])
    with pytest.raises(InvalidInput, match="re-run `rca train`"):
        SpanAnomalyModel.load(tmp_path)


def _arrays(path):
    with np.load(path) as z:
        return {name: z[name] for name in z.files}


def _meta(arrays):
    return json.loads(arrays["meta"].tobytes())


def _with_meta(arrays, meta):
    return {**arrays, "meta": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}


def _first_inner(arrays):
    return int(np.flatnonzero(arrays["node_left_child"] != -1)[0])


def _set(arrays, name, index, value):
    a = arrays[name].astype(np.int64)
    a[index] = value
    return {**arrays, name: a}


def _as_float(arrays, name):
    """``name`` stored as float64, and declared so in the meta (both agree: only the kind is wrong)."""
    meta = _meta(arrays)
    meta["dtypes"][name] = "<f8"
    return _with_meta({**arrays, name: arrays[name].astype(np.float64)}, meta)


def _first_shared_child(arrays):
    i = _first_inner(arrays)
    return _set(arrays, "node_right_child", i, arrays["node_left_child"][i])


TAMPERINGS = {
    "child past its tree": lambda a: _set(a, "node_left_child", _first_inner(a), 10**6),
    "child pointing back": lambda a: _set(a, "node_right_child", _first_inner(a), 0),
    "negative child": lambda a: _set(a, "node_right_child", _first_inner(a), -5),
    "leaf with a child": lambda a: _set(a, "node_right_child", int(np.flatnonzero(a["node_left_child"] == -1)[0]), 1),
    "split feature out of range": lambda a: _set(a, "node_feature", _first_inner(a), 99),
    "feature subset out of range": lambda a: _set(a, "features", 0, 99),
    "node array too short": lambda a: {**a, "node_threshold": a["node_threshold"][:-1]},
    "threshold as float32": lambda a: {**a, "node_threshold": a["node_threshold"].astype(np.float32)},
    "offsets past the end": lambda a: _set(a, "tree_offsets", -1, 10**7),
    "max depth too small": lambda a: {**a, "tree_max_depth": np.zeros_like(a["tree_max_depth"])},
    "max depth too large": lambda a: _set(a, "tree_max_depth", 0, a["tree_max_depth"][0] + 1),
    "node depth off by one": lambda a: _set(a, "node_depth", -1, a["node_depth"][-1] + 1),
    "root depth two": lambda a: {**a, "node_depth": a["node_depth"].astype(np.int64) + 1,
                                 "tree_max_depth": a["tree_max_depth"].astype(np.int64) + 1},
    "shared child": _first_shared_child,
    "float offsets": lambda a: _as_float(a, "tree_offsets"),
    "float features": lambda a: _as_float(a, "features"),
    "float seeds": lambda a: _as_float(a, "seeds"),
    "float depths": lambda a: _as_float(a, "node_depth"),
    "integer node values": lambda a: _with_meta({**a, "node_value": a["node_value"].astype(np.int64)},
                                                {**_meta(a), "dtypes": {**_meta(a)["dtypes"], "node_value": "<i8"}}),
    "extra not a dict": lambda a: _with_meta(a, {**_meta(a), "extra": [1, 2]}),
    "missing array": lambda a: {k: v for k, v in a.items() if k != "node_feature"},
    "extra array": lambda a: {**a, "extra": np.zeros(3)},
    "meta not json": lambda a: {**a, "meta": np.frombuffer(b"{not json", dtype=np.uint8)},
    "no meta": lambda a: {k: v for k, v in a.items() if k != "meta"},
    "wrong format": lambda a: _with_meta(a, {**_meta(a), "format": "something else"}),
    "format version": lambda a: _with_meta(a, {**_meta(a), "format_version": 99}),
    "object dtype requested": lambda a: _with_meta(a, {**_meta(a), "dtypes": {**_meta(a)["dtypes"], "features": "O"}}),
    "tree count": lambda a: _with_meta(a, {**_meta(a), "forests": [{**f, "n_trees": f["n_trees"] + 1}
                                                                   for f in _meta(a)["forests"]]}),
    "bad parameter": lambda a: _with_meta(a, {**_meta(a), "forests": [{**f, "params": {**f["params"], "verbose": "x"}}
                                                                      for f in _meta(a)["forests"]]}),
    "unknown parameter": lambda a: _with_meta(a, {**_meta(a), "forests": [{**f, "params": {**f["params"], "x": 1}}
                                                                          for f in _meta(a)["forests"]]}),
    "pickled member": lambda a: {**a, "features": np.array([object()], dtype=object)},
}


@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_tampered_file_is_refused(tmp_path, forests, name):
    path = tmp_path / "f.npz"
    save_forests(forests, path)
    np.savez(path, **TAMPERINGS[name](_arrays(path)))
    with pytest.raises(InvalidInput):
        load_forests(path)


def test_damaged_or_missing_file_is_refused(tmp_path, forests):
    path = tmp_path / "f.npz"
    save_forests(forests, path)
    data = path.read_bytes()
    cases = {"missing": None, "empty": b"", "garbage": b"\x93NUMPY not really" * 50,
             "truncated": data[: len(data) // 2], "flipped": data[:2000] + bytes([data[2000] ^ 0xFF]) + data[2001:]}
    for name, content in cases.items():
        bad = tmp_path / f"{name}.npz"
        if content is not None:
            bad.write_bytes(content)
        with pytest.raises(InvalidInput):
            load_forests(bad)


def test_other_sklearn_version_asks_to_retrain(tmp_path, forests):
    path = tmp_path / "f.npz"
    save_forests(forests, path)
    arrays = _arrays(path)
    np.savez(path, **_with_meta(arrays, {**_meta(arrays), "sklearn_version": "0.1.0"}))
    with pytest.raises(NotFitted, match="re-run `rca train`"):
        load_forests(path)


def test_unsupported_forest_is_not_written(tmp_path, forests):
    path = tmp_path / "f.npz"
    save_forests({"plain": forests["plain"]}, path)
    before = path.read_bytes()
    weighted = IsolationForest(n_estimators=3, random_state=0).fit(np.ones((20, 2)) * np.arange(20)[:, None],
                                                                   sample_weight=np.arange(1, 21))
    for bad in ({"w": weighted}, {"unfitted": IsolationForest()}, {"ok": forests["plain"], "other": object()}):
        with pytest.raises(InvalidInput):
            save_forests(bad, path)
        assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["f.npz"]  # no temp file left behind
