"""Fitted IsolationForests on disk without pickle: JSON parameters plus one ``.npz`` of arrays.

All trees' node arrays are concatenated (one array per node field, plus per-tree offsets), so a
few hundred forests load in a handful of ``np.load`` reads. Loading uses ``allow_pickle=False`` and
checks every index before it reaches scikit-learn's C code (a bad child or feature index there
would read outside memory), then rebuilds real ``IsolationForest`` objects the way unpickling does
(``Tree(...)`` + ``Tree.__setstate__``), so ``score_samples`` and ``predict`` give the same numbers.
Files record the scikit-learn version; another major.minor asks for ``rca train`` again. A caller may
store its own JSON next to the forests (``extra``), so a whole model is one file written by one rename.
"""

from __future__ import annotations

import json
import os
import uuid
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rca.errors import InvalidInput, NotFitted

if TYPE_CHECKING:
    from sklearn.ensemble import IsolationForest

FORMAT = "rca-isolation-forests"
FORMAT_VERSION = 1
TREE_LEAF = -1
# fitted IsolationForest attributes this format knows; anything else is refused on save
FITTED = {"n_features_in_", "feature_names_in_", "max_samples_", "_n_samples", "estimator_", "_max_samples",
          "_max_features", "_sample_weight", "estimators_", "estimators_features_", "_seeds",
          "_average_path_length_per_tree", "_decision_path_lengths", "offset_"}
SCALARS = ("n_features_in_", "max_samples_", "_n_samples", "_max_samples", "_max_features")
TREE_FITTED = {"n_features_in_", "n_outputs_", "max_features_", "tree_"}
# arrays besides the tree node fields (whose dtypes are NODE_DTYPE's): float64 or a signed integer
FLOAT_ARRAYS = {"node_value", "node_avg_path"}
INT_ARRAYS = {"node_depth", "tree_offsets", "tree_max_depth", "tree_random_state", "seeds", "features"}


def _plain(value, what: str):
    if isinstance(value, np.generic):
        value = value.item()
    if value is not None and not isinstance(value, (bool, int, float, str)):
        raise InvalidInput(f"cannot save {what}={value!r}: only plain parameter values are supported")
    return value


def _narrow(a: np.ndarray) -> np.ndarray:
    """Smallest signed integer dtype holding ``a`` (lossless; load casts back)."""
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    for dt in (np.int8, np.int16, np.int32):
        if np.iinfo(dt).min <= lo and hi <= np.iinfo(dt).max:
            return a.astype(dt)
    return a.astype(np.int64)


def _describe(key: str, forest) -> tuple[dict, list]:
    from sklearn.ensemble import IsolationForest
    from sklearn.tree import ExtraTreeRegressor

    if (not isinstance(forest, IsolationForest) or not hasattr(forest, "estimators_")
            or type(forest.estimator_) is not ExtraTreeRegressor):
        raise InvalidInput(f"cannot save {key!r}: not a fitted IsolationForest")
    params = {k: _plain(v, f"{key!r} {k}") for k, v in forest.get_params(deep=False).items()}
    fresh = IsolationForest(**params).__dict__
    unknown = set(forest.__dict__) - set(fresh) - FITTED
    changed = [k for k in fresh if k not in params and forest.__dict__.get(k) != fresh[k]]
    if unknown or changed or forest._sample_weight is not None:
        raise InvalidInput(f"cannot save {key!r}: unsupported IsolationForest state "
                           f"{sorted(unknown | set(changed)) or ['sample_weight']}")
    tree_params = {k: _plain(v, f"{key!r} tree {k}") for k, v in forest.estimator_.get_params().items()}
    proto = {**ExtraTreeRegressor(**tree_params).__dict__, "random_state": None}
    trees = forest.estimators_
    for est in trees:
        t = est.tree_
        if (set(est.__dict__) != set(proto) | TREE_FITTED or t.n_outputs != 1 or list(t.n_classes) != [1]
                or any(est.__dict__[k] != v for k, v in proto.items() if k != "random_state")
                or not isinstance(est.random_state, (int, np.integer))
                or est.n_features_in_ != forest._max_features or est.max_features_ != trees[0].max_features_):
            raise InvalidInput(f"cannot save {key!r}: unsupported tree state")
    names = getattr(forest, "feature_names_in_", None)
    return {"key": key, "n_trees": len(trees), "params": params, "tree_params": tree_params,
            "tree_max_features_": int(trees[0].max_features_), "offset_": float(forest.offset_),
            "feature_names_in_": None if names is None else [str(n) for n in names],
            **{k: int(getattr(forest, k)) for k in SCALARS}}, trees


def save_forests(forests: dict[str, IsolationForest], path: Path, extra: dict | None = None) -> None:
    """Write fitted IsolationForests (name -> forest) to one ``.npz``; atomic (temp file + rename).

    ``extra``: the caller's own JSON-serializable dict, stored in the same file (see :func:`load_forests`).
    """
    import sklearn
    from sklearn.tree._tree import NODE_DTYPE

    entries, trees, forest_list = [], [], []
    for key, forest in forests.items():
        entry, ts = _describe(str(key), forest)
        entries.append(entry)
        trees += ts
        forest_list.append(forest)
    states = [t.tree_.__getstate__() for t in trees]
    nodes = np.concatenate([s["nodes"] for s in states]) if states else np.zeros(0, NODE_DTYPE)
    arrays = {f"node_{f}": nodes[f] for f in NODE_DTYPE.names}
    arrays.update({
        "node_value": np.concatenate([s["values"].reshape(-1) for s in states] or [np.zeros(0)]),
        "node_depth": np.concatenate([d for f in forest_list for d in f._decision_path_lengths] or [np.zeros(0, int)]),
        "node_avg_path": np.concatenate([a for f in forest_list for a in f._average_path_length_per_tree]
                                        or [np.zeros(0)]),
        "tree_offsets": np.concatenate([[0], np.cumsum([s["node_count"] for s in states], dtype=np.int64)]),
        "tree_max_depth": np.array([s["max_depth"] for s in states], dtype=np.int64),
        "tree_random_state": np.array([t.random_state for t in trees], dtype=np.int64),
        "seeds": np.concatenate([f._seeds for f in forest_list] or [np.zeros(0, np.int64)]),
        "features": np.concatenate([x for f in forest_list for x in f.estimators_features_] or [np.zeros(0, int)]),
    })
    dtypes = {k: a.dtype.str for k, a in arrays.items()}
    arrays = {k: _narrow(a) if a.dtype.kind in "iub" else a for k, a in arrays.items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "sklearn_version": sklearn.__version__,
            "dtypes": dtypes, "forests": entries}
    if extra is not None:
        meta["extra"] = extra
    try:
        encoded = json.dumps(meta).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"cannot save {path}: extra data is not plain JSON ({exc})") from exc
    arrays["meta"] = np.frombuffer(encoded, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")  # same directory: atomic rename
    try:
        with open(tmp, "xb") as fh:  # unlike mkstemp, honours the umask like any other saved file
            np.savez_compressed(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read(path: Path) -> tuple[dict, dict]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (OSError, ValueError, TypeError, EOFError, KeyError, AttributeError, RecursionError,
            zipfile.BadZipFile, zlib.error) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise InvalidInput(f"cannot read model file {path}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InvalidInput(f"{path} is not an rca forest file")
    return meta, arrays


def _check(ok, path: Path, what: str) -> None:
    if not ok:
        raise InvalidInput(f"corrupt model file {path}: {what}; re-run `rca train`")


def _is_int(v, lo: int = 0) -> bool:
    return type(v) is int and lo <= v < 2**31


def _restore(meta: dict, arrays: dict, path: Path) -> dict:
    """Every expected array, 1-D, cast back to its saved dtype (integers only if the values fit).

    The saved dtype must be the one the array really has: NODE_DTYPE's for node fields, float64 for
    FLOAT_ARRAYS, a signed integer for INT_ARRAYS (indices, counts, depths, seeds).
    """
    from sklearn.tree._tree import NODE_DTYPE

    names = {f"node_{f}" for f in NODE_DTYPE.names} | FLOAT_ARRAYS | INT_ARRAYS
    dtypes = meta.get("dtypes")
    _check(set(arrays) == names and isinstance(dtypes, dict) and set(dtypes) == names, path, "unexpected arrays")
    out = {}
    for name, a in arrays.items():
        try:
            target = np.dtype(dtypes[name])
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"corrupt model file {path}: bad dtype for {name}") from exc
        if name in FLOAT_ARRAYS:
            _check(target == np.float64, path, f"{name} dtype")
        elif name in INT_ARRAYS:
            _check(target.kind == "i", path, f"{name} dtype")
        else:
            _check(target == NODE_DTYPE.fields[name[5:]][0], path, f"{name} dtype")
        _check(a.ndim == 1 and target.kind in "iuf" and target.itemsize <= 8, path, f"{name} shape/dtype")
        if target.kind == "f":
            _check(a.dtype == target, path, f"{name} dtype")
        else:
            info = np.iinfo(target)
            _check(a.dtype.kind in "iu" and (a.size == 0 or (info.min <= a.min() and a.max() <= info.max)),
                   path, f"{name} values")
        out[name] = a.astype(target, copy=False)
    return out


def _check_entries(entries, path: Path) -> None:
    _check(isinstance(entries, list), path, "forest list")
    for e in entries:
        _check(isinstance(e, dict) and isinstance(e.get("key"), str) and _is_int(e.get("n_trees"), 1)
               and isinstance(e.get("params"), dict) and isinstance(e.get("tree_params"), dict)
               and all(_is_int(e.get(k), 1) for k in (*SCALARS, "tree_max_features_"))
               and type(e.get("offset_")) in (int, float), path, "forest description")
        names = e.get("feature_names_in_")
        _check(e["_max_features"] <= e["n_features_in_"] and (names is None or (
            isinstance(names, list) and len(names) == e["n_features_in_"]
            and all(isinstance(n, str) for n in names))), path, f"forest {e['key']!r} features")
    _check(len({e["key"] for e in entries}) == len(entries), path, "duplicate forest names")


def _check_trees(entries: list, a: dict, path: Path) -> None:
    """Every index the C tree walk will follow stays inside its tree; children come after parents.

    Each node but the root has exactly one parent, node depths count the steps from the root and each
    tree's ``max_depth`` is its deepest node's: ``Tree.decision_path`` writes one index per node on a
    sample's path into a buffer of ``1 + max_depth`` per sample without bounds checks.
    """
    n_trees = np.array([e["n_trees"] for e in entries], dtype=np.int64)
    off = a["tree_offsets"]
    _check(off.shape == (n_trees.sum() + 1,) and off[0] == 0 and (np.diff(off) >= 1).all(), path, "tree offsets")
    total = int(off[-1])
    for name in a:
        if name.startswith("node_"):
            _check(a[name].shape == (total,), path, f"{name} length")
    for name in ("tree_max_depth", "tree_random_state", "seeds"):
        _check(a[name].shape == (n_trees.sum(),), path, f"{name} length")
    sub = np.array([e["_max_features"] for e in entries], dtype=np.int64)
    _check(a["features"].shape == ((n_trees * sub).sum(),), path, "features length")
    counts = np.diff(off)
    tree_of = np.repeat(np.arange(len(counts)), counts)
    local = np.arange(total) - off[:-1][tree_of]
    size = counts[tree_of]
    left, right, feature = a["node_left_child"], a["node_right_child"], a["node_feature"]
    leaf = left == TREE_LEAF
    inner = ~leaf
    _check((right[leaf] == TREE_LEAF).all(), path, "leaf with a child")
    _check(((left > local) & (left < size) & (right > local) & (right < size))[inner].all(), path,
           "node index out of range")
    n_sub = np.repeat(sub, n_trees)[tree_of]
    _check(((feature >= 0) & (feature < n_sub))[inner].all(), path, "split feature out of range")
    if "node_missing_go_to_left" in a:
        _check((a["node_missing_go_to_left"] <= 1).all(), path, "missing_go_to_left")
    _check((a["node_depth"] >= 0).all() and (a["node_n_node_samples"] >= 0).all()
           and (a["tree_max_depth"] >= 0).all(), path, "negative depth or count")
    if total:
        depth, roots, idx = a["node_depth"], off[:-1], np.flatnonzero(inner)
        base = roots[tree_of[idx]]
        kids = np.concatenate([left[idx] + base, right[idx] + base])
        _check((np.bincount(np.concatenate([kids, roots]), minlength=total) == 1).all(), path,
               "node without exactly one parent")
        _check((depth[roots] == 1).all() and (depth[left[idx] + base] == depth[idx] + 1).all()
               and (depth[right[idx] + base] == depth[idx] + 1).all(), path, "node depths")
        _check((np.maximum.reduceat(depth, roots) - 1 == a["tree_max_depth"]).all(), path, "tree max_depth")
    n_in = np.repeat([e["n_features_in_"] for e in entries], n_trees * sub)
    _check(((a["features"] >= 0) & (a["features"] < n_in)).all(), path, "feature subset out of range")
    for name in ("tree_random_state", "seeds"):
        _check(((a[name] >= 0) & (a[name] < 2**32)).all(), path, f"{name} values")


def load_forests(path: Path) -> tuple[dict[str, IsolationForest], dict | None]:
    """Read :func:`save_forests` output back: fitted ``IsolationForest`` objects (no pickle) and the
    ``extra`` dict saved with them (None when none was)."""
    import sklearn
    from sklearn.ensemble import IsolationForest
    from sklearn.tree import ExtraTreeRegressor
    from sklearn.tree._tree import NODE_DTYPE, Tree

    meta, raw = _read(path)
    saved = str(meta.get("sklearn_version"))
    if saved.split(".")[:2] != sklearn.__version__.split(".")[:2]:
        raise NotFitted(f"{path} was written with scikit-learn {saved} but {sklearn.__version__} is installed: "
                        "re-run `rca train`")
    if meta.get("format_version") != FORMAT_VERSION:
        raise InvalidInput(f"{path} has format version {meta.get('format_version')!r}, expected "
                           f"{FORMAT_VERSION}: re-run `rca train`")
    extra = meta.get("extra")
    _check(extra is None or isinstance(extra, dict), path, "extra data")
    entries = meta.get("forests")
    _check_entries(entries, path)
    a = _restore(meta, raw, path)
    _check_trees(entries, a, path)
    nodes = np.empty(len(a["node_value"]), dtype=NODE_DTYPE)
    for field in NODE_DTYPE.names:
        nodes[field] = a[f"node_{field}"]
    off, one = a["tree_offsets"], np.ones(1, dtype=np.intp)
    forests, t, f0 = {}, 0, 0
    try:
        for e in entries:
            forest = IsolationForest(**e["params"])
            forest._validate_params()
            proto = ExtraTreeRegressor(**e["tree_params"])
            proto._validate_params()
            trees, n_sub = [], e["_max_features"]
            for i in range(t, t + e["n_trees"]):
                lo, hi = int(off[i]), int(off[i + 1])
                tree = Tree(n_sub, one, 1)
                tree.__setstate__({"max_depth": int(a["tree_max_depth"][i]), "node_count": hi - lo,
                                   "nodes": nodes[lo:hi], "values": a["node_value"][lo:hi].reshape(-1, 1, 1)})
                est = ExtraTreeRegressor.__new__(ExtraTreeRegressor)  # as unpickling does
                est.__dict__.update(proto.__dict__, random_state=int(a["tree_random_state"][i]),
                                    n_features_in_=n_sub, n_outputs_=1, max_features_=e["tree_max_features_"],
                                    tree_=tree)
                trees.append(est)
            spans = [(int(off[i]), int(off[i + 1])) for i in range(t, t + e["n_trees"])]
            forest.__dict__.update({k: e[k] for k in SCALARS}, estimator_=proto, _sample_weight=None,
                                   estimators_=trees, _seeds=a["seeds"][t:t + e["n_trees"]],
                                   estimators_features_=[a["features"][f0 + j * n_sub:f0 + (j + 1) * n_sub]
                                                         for j in range(e["n_trees"])],
                                   _average_path_length_per_tree=tuple(a["node_avg_path"][lo:hi] for lo, hi in spans),
                                   _decision_path_lengths=tuple(a["node_depth"][lo:hi] for lo, hi in spans),
                                   # fit stores -0.5 for contamination="auto", else an np.percentile result
                                   offset_=float(e["offset_"]) if forest.contamination == "auto"
                                   else np.float64(e["offset_"]))
            if e.get("feature_names_in_") is not None:
                forest.feature_names_in_ = np.asarray(e["feature_names_in_"], dtype=object)
            forests[e["key"]] = forest
            t, f0 = t + e["n_trees"], f0 + e["n_trees"] * n_sub
    except (ValueError, TypeError) as exc:  # sklearn's parameter validation, Tree.__setstate__ checks
        raise InvalidInput(f"corrupt model file {path}: {exc}; re-run `rca train`") from exc
    return forests, extra
