"""Per-operation span anomaly scoring with IsolationForest.

Features per span, each relative to its (service, operation)'s baseline: log self time,
log duration, number of children, error (status or exception event), error-severity logs
linked by span id. One IsolationForest per operation with enough samples; a shared model
over the same normalized features for rare operations. Lower ``score_samples`` = more
abnormal, as IsolationForest does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rca.anomaly.features import span_features
from rca.errors import InvalidInput, NotFitted

FEATURES = ["self_z", "duration_z", "children_d", "error", "error_logs"]
SHARED = "__shared__"
# rca.anomaly.forest_io: JSON parameters + arrays, no pickle; the forests and the statistics below in one file
MODEL_FILE = "spans.forests.npz"
LEGACY_MODEL_FILE = "spans.skops"  # older rca; not loaded any more
LEGACY_FILES = (LEGACY_MODEL_FILE, "spans.json")  # what older rca saved beside (or instead of) the model file
PARAMS = ("min_samples", "n_estimators", "max_samples", "contamination_quantile", "max_fit_samples", "random_state")
OP_STATS = ["med_self", "mad_self", "med_dur", "mad_dur", "med_children", "n"]


def _op_key(service: pd.Series, name: pd.Series) -> pd.Series:
    return service.astype(str) + "\x1f" + name.astype(str)


def _is_number(v) -> bool:
    return type(v) in (int, float)  # not bool


def _params_ok(p) -> bool:
    return (isinstance(p, dict) and set(p) == set(PARAMS)
            and all(type(p[k]) is int and p[k] >= 1
                    for k in ("min_samples", "n_estimators", "max_samples", "max_fit_samples"))
            and _is_number(p["contamination_quantile"]) and 0 <= p["contamination_quantile"] <= 1
            and (p["random_state"] is None or (type(p["random_state"]) is int and 0 <= p["random_state"] < 2**32)))


def _op_stats_ok(st, models: dict) -> bool:
    if not (isinstance(st, dict) and st.get("columns") == OP_STATS and isinstance(st.get("index"), list)
            and isinstance(st.get("data"), list)):
        return False
    index, data = st["index"], st["data"]
    return (len(index) == len(data) == len(set(index)) and all(isinstance(k, str) for k in index)
            and all(isinstance(r, list) and len(r) == len(OP_STATS) and all(map(_is_number, r)) for r in data)
            and set(models) - {SHARED} <= set(index))


def _read_state(extra: dict | None, models: dict, path: Path) -> tuple[dict, dict, pd.DataFrame]:
    """Parameters, thresholds and per-operation statistics saved with the forests, checked."""
    def bad(what: str) -> InvalidInput:
        return InvalidInput(f"span model {path}: {what}; re-run `rca train`")

    if extra is None:
        raise bad("no statistics saved with the forests")
    params, thresholds, st = extra.get("params"), extra.get("thresholds"), extra.get("op_stats")
    if not _params_ok(params):
        raise bad("invalid parameters")
    if not (isinstance(thresholds, dict) and set(thresholds) == set(models)
            and all(map(_is_number, thresholds.values()))):
        raise bad("thresholds do not match the forests")
    if not _op_stats_ok(st, models):
        raise bad("invalid per-operation statistics")
    return params, thresholds, pd.DataFrame(st["data"], index=st["index"], columns=st["columns"])


class SpanAnomalyModel:
    """scikit-learn manners: hyperparameters in ``__init__``, ``fit`` returns self, fitted state ends in ``_``."""

    def __init__(self, min_samples: int = 50, n_estimators: int = 60, max_samples: int = 256,
                 contamination_quantile: float = 0.01, max_fit_samples: int = 2000, random_state: int = 0):
        self.min_samples = min_samples
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.contamination_quantile = contamination_quantile
        self.max_fit_samples = max_fit_samples
        self.random_state = random_state

    # ----------------------------------------------------------------- features
    def _normalize(self, feats: pd.DataFrame) -> pd.DataFrame:
        key = _op_key(feats["service"], feats["name"])
        stats = self.op_stats_.reindex(key.to_numpy())
        log_self = np.log1p(feats["self_ns"].to_numpy(float))
        log_dur = np.log1p(feats["duration_ns"].to_numpy(float))
        # unseen operations: compare to themselves (z = 0) rather than invent a baseline
        med_self = np.where(stats["med_self"].isna(), log_self, stats["med_self"])
        med_dur = np.where(stats["med_dur"].isna(), log_dur, stats["med_dur"])
        out = pd.DataFrame(index=feats.index)
        out["self_z"] = (log_self - med_self) / stats["mad_self"].fillna(1.0).to_numpy()
        out["duration_z"] = (log_dur - med_dur) / stats["mad_dur"].fillna(1.0).to_numpy()
        out["children_d"] = feats["n_children"].to_numpy(float) - stats["med_children"].fillna(0).to_numpy()
        out["error"] = feats["error"].to_numpy(float)
        out["error_logs"] = np.minimum(feats["error_logs"].to_numpy(float), 5.0)
        out["op"] = key.to_numpy()
        return out

    def fit(self, spans: pd.DataFrame, logs: pd.DataFrame | None = None) -> "SpanAnomalyModel":
        from sklearn.ensemble import IsolationForest

        if spans.empty:
            raise InvalidInput("no spans to train on")
        feats = span_features(spans, logs)
        key = _op_key(feats["service"], feats["name"])
        log_self = np.log1p(feats["self_ns"].astype(float))
        log_dur = np.log1p(feats["duration_ns"].astype(float))
        g = pd.DataFrame({"k": key, "s": log_self, "d": log_dur, "c": feats["n_children"]}).groupby("k")
        med = g.median()
        mad_s = (pd.DataFrame({"k": key, "v": (log_self - med["s"].reindex(key).to_numpy()).abs()})
                 .groupby("k")["v"].median() * 1.4826)
        mad_d = (pd.DataFrame({"k": key, "v": (log_dur - med["d"].reindex(key).to_numpy()).abs()})
                 .groupby("k")["v"].median() * 1.4826)
        self.op_stats_ = pd.DataFrame({
            "med_self": med["s"], "mad_self": np.maximum(mad_s, 0.05), "med_dur": med["d"],
            "mad_dur": np.maximum(mad_d, 0.05), "med_children": med["c"], "n": g.size(),
        })
        X = self._normalize(feats)
        self.models_, self.thresholds_ = {}, {}
        rng = np.random.RandomState(self.random_state)
        for op, part in [(SHARED, X)] + list(X.groupby("op")):
            if op != SHARED and len(part) < self.min_samples:
                continue
            data = part[FEATURES].to_numpy(float)
            cap = 20000 if op == SHARED else self.max_fit_samples
            if len(data) > cap:  # trees see max_samples rows each; more only slows the threshold estimate
                data = data[rng.choice(len(data), cap, replace=False)]
            model = IsolationForest(n_estimators=self.n_estimators, max_samples=min(self.max_samples, len(data)),
                                    random_state=self.random_state).fit(data)
            self.models_[op] = model
            self.thresholds_[op] = float(np.quantile(model.score_samples(data), self.contamination_quantile))
        return self

    def _check(self) -> None:
        if not hasattr(self, "models_"):
            raise NotFitted("span anomaly model is not trained: run `rca train` first")

    def score_samples(self, spans: pd.DataFrame, logs: pd.DataFrame | None = None) -> pd.DataFrame:
        """Per span: the normalized features, ``score`` (lower = more abnormal) and ``anomalous``.

        Vectorized: one ``score_samples`` call per model per batch.
        """
        self._check()
        feats = span_features(spans, logs)
        X = self._normalize(feats)
        score = np.zeros(len(X))
        thr = np.zeros(len(X))
        per_op = X["op"].map(lambda k: k if k in self.models_ else SHARED).to_numpy()
        for op in np.unique(per_op):
            idx = np.flatnonzero(per_op == op)
            score[idx] = self.models_[op].score_samples(X.iloc[idx][FEATURES].to_numpy(float))
            thr[idx] = self.thresholds_[op]
        out = feats.join(X[["self_z", "duration_z", "children_d"]])
        out["score"] = score
        out["anomalous"] = score < thr
        return out

    # ------------------------------------------------------------- persistence
    def save(self, directory: Path) -> None:
        from rca.anomaly.forest_io import save_forests

        self._check()
        directory.mkdir(parents=True, exist_ok=True)
        state = {"params": {k: getattr(self, k) for k in PARAMS}, "thresholds": self.thresholds_,
                 "op_stats": self.op_stats_.to_dict(orient="split")}  # JSON floats round-trip exactly
        save_forests(self.models_, directory / MODEL_FILE, extra=state)  # one file, one atomic rename
        for legacy in LEGACY_FILES:  # superseded; never loaded
            (directory / legacy).unlink(missing_ok=True)

    @classmethod
    def load(cls, directory: Path) -> "SpanAnomalyModel":
        from rca.anomaly.forest_io import load_forests

        path = directory / MODEL_FILE
        if not path.exists():
            if (directory / LEGACY_MODEL_FILE).exists():
                raise NotFitted(f"the span model in {directory} was saved by an older rca in a format that is no "
                                "longer loaded: re-run `rca train`")
            raise NotFitted(f"no trained span model in {directory}: run `rca train` first")
        models, extra = load_forests(path)
        params, thresholds, op_stats = _read_state(extra, models, path)
        self = cls(**params)
        self.models_, self.thresholds_, self.op_stats_ = models, thresholds, op_stats
        return self
