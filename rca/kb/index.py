"""The FAISS index over incident embeddings, and its manifest.

Cosine similarity = inner product of unit vectors. Up to ``flat_max`` vectors the
index is exact (IndexIDMap over IndexFlatIP); above, an IVF index (IndexIVFFlat,
inner product) whose ``nprobe`` is set for recall (see bench/kb.py). Both take
incremental adds and ``remove_ids``, so add/delete never need a rebuild.

The index file is a cache of the store: ``save`` writes it next to a manifest
(count + digest of the store rows + model + dim + sha256 of the file), and
``load`` refuses a file that is missing, unreadable, corrupt or different from
what the manifest says; the knowledge base then rebuilds from the store.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 1
FLAT_MAX = 20_000


@contextmanager
def threads(n: int | None):
    """Run FAISS with ``n`` OpenMP threads (None: unchanged). A single query is fastest on one
    thread: waking a team of threads costs more than the scan (10x on a busy 2-core box)."""
    faiss = _faiss()
    before = faiss.omp_get_max_threads()
    if n is not None:
        faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class IndexUnusable(Exception):
    """The persisted index cannot be served (missing, corrupt, stale); rebuild from the store."""


def _faiss():
    import faiss

    return faiss


def manifest_path(index_path: Path) -> Path:
    return index_path.with_name(index_path.name + ".manifest.json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class VectorIndex:
    """A FAISS index keyed by int64 ids. Build with ``VectorIndex.build(ids, vecs, dim)``."""

    def __init__(self, index: Any, kind: str, dim: int, nprobe: int = 0):
        self.index = index
        self.kind = kind
        self.dim = dim
        self.nprobe = nprobe

    # -------------------------------------------------------------- building
    @classmethod
    def build(cls, ids: np.ndarray, vecs: np.ndarray, dim: int, *, flat_max: int = FLAT_MAX,
              random_state: int = 0) -> "VectorIndex":
        faiss = _faiss()
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        vecs = np.ascontiguousarray(vecs, dtype=np.float32).reshape(-1, dim)
        n = len(ids)
        if n <= flat_max:
            out = cls(faiss.IndexIDMap(faiss.IndexFlatIP(dim)), "flat", dim)
        else:
            nlist = ivf_nlist(n)
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            index.cp.seed = int(random_state)
            index.train(vecs)
            out = cls(index, "ivf", dim, nprobe=ivf_nprobe(nlist))
            index.nprobe = out.nprobe
        if n:
            out.index.add_with_ids(vecs, ids)
        return out

    def wants_rebuild(self, n: int, flat_max: int = FLAT_MAX) -> bool:
        """True when the size has moved far enough that the other index kind fits better."""
        return (self.kind == "flat" and n > flat_max) or (self.kind == "ivf" and n < flat_max // 2)

    # -------------------------------------------------------------- updates
    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32).reshape(-1, self.dim),
                                    np.ascontiguousarray(ids, dtype=np.int64))

    def remove(self, ids: np.ndarray) -> int:
        if not len(ids):
            return 0
        return int(self.index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64)))

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    # -------------------------------------------------------------- search
    def search(self, vecs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, ids), each (n_queries, k); missing neighbours have id -1."""
        q = np.ascontiguousarray(vecs, dtype=np.float32).reshape(-1, self.dim)
        k = max(1, min(int(k), max(self.ntotal, 1)))
        with threads(1 if len(q) <= 8 else None):
            sims, ids = self.index.search(q, k)
        return sims, ids

    # -------------------------------------------------------------- persistence
    def save(self, path: Path, manifest: dict[str, Any]) -> dict[str, Any]:
        """Write index then manifest atomically (tmp + rename); returns the manifest written."""
        faiss = _faiss()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        faiss.write_index(self.index, str(tmp))
        full = dict(manifest, format=FORMAT, kind=self.kind, dim=self.dim, nprobe=self.nprobe,
                    ntotal=self.ntotal, sha256=_sha256(tmp))
        mtmp = manifest_path(path).with_name(manifest_path(path).name + ".tmp")
        mtmp.write_text(json.dumps(full, sort_keys=True))
        os.replace(tmp, path)
        os.replace(mtmp, manifest_path(path))
        return full

    @classmethod
    def load(cls, path: Path, expected: dict[str, Any]) -> "VectorIndex":
        """Load the file if it is intact and matches ``expected`` (count, digest, model, dim); else IndexUnusable."""
        path = Path(path)
        mpath = manifest_path(path)
        if not path.exists() or not mpath.exists():
            raise IndexUnusable("index file or manifest missing")
        try:
            manifest = json.loads(mpath.read_text())
        except (OSError, ValueError) as exc:
            raise IndexUnusable(f"manifest unreadable: {exc}") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise IndexUnusable("manifest format unknown")
        for key, value in expected.items():
            if manifest.get(key) != value:
                raise IndexUnusable(f"index is stale: {key} {manifest.get(key)!r} != store {value!r}")
        if _sha256(path) != manifest.get("sha256"):
            raise IndexUnusable("index file checksum mismatch (corrupt or replaced)")
        faiss = _faiss()
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as exc:
            raise IndexUnusable(f"index file unreadable: {exc}") from exc
        if int(index.ntotal) != manifest.get("ntotal") or int(index.d) != expected.get("dim", index.d):
            raise IndexUnusable("index contents do not match manifest")
        out = cls(index, manifest.get("kind", "flat"), int(index.d), int(manifest.get("nprobe") or 0))
        if out.kind == "ivf":
            index.nprobe = out.nprobe
        return out


def ivf_nlist(n: int) -> int:
    """Number of IVF lists: ~4*sqrt(n), at least 16, and >= 39 training points per list."""
    return int(max(16, min(4 * math.sqrt(n), n // 39)))


def ivf_nprobe(nlist: int) -> int:
    """Lists visited per query; chosen with bench/kb.py for recall@10 >= 0.95 at 100k."""
    return int(max(8, nlist // 16))
