"""Knowledge-base search at scale: exact (flat) vs approximate (IVF, as used above the
flat limit; HNSW for comparison) FAISS indexes over N incident vectors, in one run.

Vectors are "random but realistic": topic centres are real MiniLM embeddings of
generated incident texts (``--no-model``: random centres), each vector a blend of
two centres plus noise so neighbours sit at cosine ~0.6-0.9, like paraphrased
incidents. Queries are fresh vectors from the same generator (not in the index).
Latency is per single query (as served), excluding the query embedding. The last
block times ``KnowledgeBase.search_vector`` end to end (store freshness check +
FAISS + row fetch) on a real DuckDB file holding the N incidents.

    .venv/bin/python bench/kb.py [--n 100000] [--queries 500] [--k 10]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

SERVICES = ["payment", "checkout", "cart", "redis", "orders-db", "gateway", "auth", "search", "inventory",
            "shipping", "email", "recommendation", "kafka", "coredns", "ingress", "billing"]
SYMPTOMS = ["connection pool exhausted", "cache eviction storm", "TLS certificate expired", "DNS lookups failing",
            "disk full", "out of memory, pods OOMKilled", "CPU throttling", "thread pool saturated",
            "slow queries after index drop", "deadlock on row locks", "retry storm", "consumer lag growing",
            "bad config rollout", "null pointer exception after deploy", "rate limit exceeded upstream",
            "packet loss between zones", "clock skew breaks token validation", "GC pauses"]


def centres(dim: int, use_model: bool, rng: np.random.Generator) -> np.ndarray:
    if use_model:
        from rca.kb.embed import embed_texts

        texts = [f"{sym} in {svc}" for svc in SERVICES for sym in SYMPTOMS]
        return embed_texts(texts)
    c = rng.normal(size=(len(SERVICES) * len(SYMPTOMS), dim)).astype(np.float32)
    return c / np.linalg.norm(c, axis=1, keepdims=True)


def generate(c: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    a, b = rng.integers(0, len(c), n), rng.integers(0, len(c), n)
    w = rng.uniform(0.6, 1.0, size=(n, 1)).astype(np.float32)
    base = w * c[a] + (1 - w) * c[b]
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    noise = rng.normal(size=base.shape).astype(np.float32)
    noise *= rng.uniform(0.5, 1.0, size=(n, 1)).astype(np.float32) / np.linalg.norm(noise, axis=1, keepdims=True)
    v = base + noise
    return np.ascontiguousarray(v / np.linalg.norm(v, axis=1, keepdims=True), dtype=np.float32)


def time_queries(search, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    for q in queries[:20]:
        search(q[None, :], k)
    lat, ids = [], []
    for q in queries:
        t0 = time.perf_counter()
        _, i = search(q[None, :], k)
        lat.append(time.perf_counter() - t0)
        ids.append(i[0])
    return np.array(lat) * 1000, np.array(ids)


def recall(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact)]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-model", action="store_true", help="random topic centres instead of MiniLM embeddings")
    ap.add_argument("--no-store", action="store_true", help="skip the end-to-end KnowledgeBase timing")
    args = ap.parse_args()

    import faiss

    from rca.kb.embed import DIM
    from rca.kb.index import FLAT_MAX, VectorIndex

    rng = np.random.default_rng(args.seed)
    c = centres(DIM, not args.no_model, rng)
    vecs = generate(c, args.n, rng)
    queries = generate(c, args.queries, rng)
    ids = np.arange(1, args.n + 1, dtype=np.int64)
    print(f"n={args.n} dim={DIM} queries={args.queries} k={args.k} faiss threads={faiss.omp_get_max_threads()}")
    nn = (queries @ vecs.T).max(axis=1)
    print(f"nearest-neighbour cosine of queries: p10={np.percentile(nn, 10):.2f} p50={np.median(nn):.2f}")

    results = {}
    t0 = time.perf_counter()
    flat = VectorIndex.build(ids, vecs, DIM, flat_max=args.n)
    results["flat"] = {"build_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    ivf = VectorIndex.build(ids, vecs, DIM, flat_max=min(FLAT_MAX, args.n - 1), random_state=args.seed)
    results["ivf"] = {"build_s": time.perf_counter() - t0, "nlist": ivf.index.nlist, "nprobe": ivf.nprobe}
    t0 = time.perf_counter()
    hnsw = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
    hnsw.hnsw.efConstruction = 80
    hnsw.add(vecs)
    hnsw.hnsw.efSearch = 64
    results["hnsw"] = {"build_s": time.perf_counter() - t0, "M": 32, "efSearch": 64}

    lat_flat, ids_flat = time_queries(flat.search, queries, args.k)
    lat_ivf, ids_ivf = time_queries(ivf.search, queries, args.k)
    lat_hnsw, ids_hnsw = time_queries(hnsw.search, queries, args.k)
    ids_hnsw = ids_hnsw + 1  # HNSW has positional ids; ours start at 1
    for name, lat, got in (("flat", lat_flat, ids_flat), ("ivf", lat_ivf, ids_ivf), ("hnsw", lat_hnsw, ids_hnsw)):
        results[name].update(p50_ms=float(np.median(lat)), p95_ms=float(np.percentile(lat, 95)),
                             recall_at_k=recall(got, ids_flat))
    print(f"{'index':6} {'build s':>8} {'p50 ms':>8} {'p95 ms':>8} {'recall@' + str(args.k):>10} {'p50 vs flat':>12}")
    for name, r in results.items():
        print(f"{name:6} {r['build_s']:8.2f} {r['p50_ms']:8.3f} {r['p95_ms']:8.3f} {r['recall_at_k']:10.3f} "
              f"{results['flat']['p50_ms'] / r['p50_ms']:11.1f}x")

    if not args.no_store:
        results["kb_end_to_end"] = time_knowledge_base(vecs[: args.n], queries, args.k)
        r = results["kb_end_to_end"]
        print(f"KnowledgeBase.search_vector ({r['kind']}, n={r['n']}): p50={r['p50_ms']:.3f} ms "
              f"p95={r['p95_ms']:.3f} ms; full store digest check (on open / after a write elsewhere) "
              f"p50={r['check_p50_ms']:.3f} ms; "
              f"first open (load+verify index) {r['open_s']:.2f} s")
    print(json.dumps(results))


def time_knowledge_base(vecs: np.ndarray, queries: np.ndarray, k: int) -> dict:
    from rca.config import Settings
    from rca.kb.base import KnowledgeBase
    from rca.store import open_store

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings().with_(home=Path(tmp))
        store = open_store(settings)
        kb = KnowledgeBase(store, settings)
        n = len(vecs)
        rid = [f"inc-{i}" for i in range(n)]
        store.execute(
            "INSERT INTO incidents (id, vec_id, title, summary, root_cause_service, root_cause_kind, links, "
            "fingerprint, confirmed, updated_ns, model, embedding) SELECT * FROM (SELECT unnest(?::VARCHAR[]), "
            "unnest(?::BIGINT[]), unnest(?::VARCHAR[]), '', 'svc', 'unknown', '[]', '{}', true, 1, ?, "
            "unnest(?::BLOB[]))",
            [rid, list(range(1, n + 1)), [f"incident {i}" for i in range(n)], kb.model, [v.tobytes() for v in vecs]])
        kb.reindex()
        store.close()
        store = open_store(settings)
        t0 = time.perf_counter()
        kb = KnowledgeBase(store, settings)
        kb.search_vector(queries[0], k)
        open_s = time.perf_counter() - t0
        assert kb.last_rebuild_reason is None, kb.last_rebuild_reason
        lat, check = [], []
        for q in queries:
            t0 = time.perf_counter()
            kb.search_vector(q, k)
            lat.append(time.perf_counter() - t0)
        for _ in range(100):
            t0 = time.perf_counter()
            kb.store_state()
            check.append(time.perf_counter() - t0)
        out = {"n": n, "kind": kb._index.kind, "p50_ms": float(np.median(lat) * 1000),
               "p95_ms": float(np.percentile(lat, 95) * 1000), "check_p50_ms": float(np.median(check) * 1000),
               "open_s": open_s}
        store.close()
        return out


if __name__ == "__main__":
    main()
