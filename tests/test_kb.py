"""Knowledge base core: real model, real FAISS, real DuckDB files in tmp_path."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rca.config import Settings
from rca.errors import InvalidInput, NotFound, PayloadTooLarge
from rca.kb.base import KnowledgeBase
from rca.kb.embed import load_model
from rca.kb.incidents import incident_from_dict, read_jsonl
from rca.kb.index import VectorIndex, manifest_path
from rca.kb.text import MAX_TEXT_CHARS
from rca.store import open_store

INCIDENTS = [
    {"id": "pay-pool", "title": "payment DB connection pool exhausted",
     "summary": "payment-service threads blocked waiting for a JDBC connection; checkout timeouts",
     "root_cause_service": "payment", "root_cause_kind": "resource", "resolution": "raise pool size to 50, fix leak"},
    {"id": "cache-storm", "title": "cache eviction storm",
     "summary": "redis evicted most keys under memory pressure; cart latency spiked from cache misses",
     "root_cause_service": "redis", "root_cause_kind": "resource", "resolution": "raise maxmemory, add jitter to TTLs"},
    {"id": "tls-expired", "title": "TLS certificate expired on the API gateway",
     "summary": "clients fail the handshake; all requests to the gateway rejected",
     "root_cause_service": "gateway", "root_cause_kind": "error", "resolution": "renew certificate, add expiry alert"},
    {"id": "dns-fail", "title": "DNS resolution failures inside the cluster",
     "summary": "services cannot resolve each other's hostnames; intermittent unknown host errors",
     "root_cause_service": "coredns", "root_cause_kind": "network", "resolution": "scale coredns"},
    {"id": "disk-full", "title": "log volume full on the orders database node",
     "summary": "no space left on device; orders writes failing",
     "root_cause_service": "orders-db", "root_cause_kind": "resource", "resolution": "rotate logs, grow volume"},
]


@pytest.fixture(scope="session")
def model():
    return load_model()


@pytest.fixture
def settings(tmp_path):
    return Settings().with_(home=tmp_path)


def open_kb(settings, **kw):
    store = open_store(settings)
    return store, KnowledgeBase(store, settings, **kw)


@pytest.fixture
def filled(settings, model):
    store, kb = open_kb(settings)
    kb.add([incident_from_dict(d) for d in INCIDENTS])
    yield store, kb
    store.close()


@pytest.mark.parametrize("query,expected", [
    ("checkout hangs: no free connections to the payments database", "pay-pool"),
    ("lots of cache misses after redis dropped its keys, cart is slow", "cache-storm"),
    ("handshake errors, cert no longer valid at the edge proxy", "tls-expired"),
    ("cannot resolve hostnames of other services in kubernetes", "dns-fail"),
])
def test_differently_worded_queries_find_the_incident(filled, query, expected):
    _, kb = filled
    hits = kb.search(query, k=3)
    assert hits[0].incident.id == expected
    assert hits[0].similarity > hits[1].similarity
    assert -1.0 <= hits[-1].similarity <= 1.0


def test_store_and_index_stay_consistent_across_restarts(settings, model):
    store, kb = open_kb(settings)
    kb.add([incident_from_dict(d) for d in INCIDENTS])
    kb.delete("dns-fail")
    kb.add([incident_from_dict(dict(INCIDENTS[0], resolution="new fix"))], upsert=True)
    store.close()

    store, kb = open_kb(settings)  # a new process would do exactly this
    assert kb.count() == 4
    hits = kb.search("unknown host errors, name resolution broken", k=4)
    assert "dns-fail" not in [h.incident.id for h in hits]
    assert kb.last_rebuild_reason is None  # the persisted index matched the store and was served
    assert kb.get("pay-pool").resolution == "new fix"
    assert kb._index.ntotal == 4
    info = kb.reindex()
    assert info["n_incidents"] == 4 and info["n_reembedded"] == 0
    store.close()

    store, kb = open_kb(settings)
    assert [h.incident.id for h in kb.search("payments connection pool", k=1)] == ["pay-pool"]
    assert kb.last_rebuild_reason is None
    store.close()


def test_corrupt_index_is_rebuilt_not_served(filled, settings):
    store, kb = filled
    store.close()
    data = bytearray(settings.kb_index_path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: faiss would still read it
    settings.kb_index_path.write_bytes(bytes(data))
    store, kb = open_kb(settings)
    assert kb.search("redis evictions", k=1)[0].incident.id == "cache-storm"
    assert "checksum" in kb.last_rebuild_reason
    store.close()

    settings.kb_index_path.write_bytes(b"garbage")
    manifest = json.loads(manifest_path(settings.kb_index_path).read_text())
    manifest_path(settings.kb_index_path).write_text(json.dumps(dict(manifest, sha256=None)))
    store, kb = open_kb(settings)
    assert kb.search("redis evictions", k=1)[0].incident.id == "cache-storm"
    assert kb.last_rebuild_reason
    store.close()

    settings.kb_index_path.unlink()
    store, kb = open_kb(settings)
    assert kb.search("expired certificate", k=1)[0].incident.id == "tls-expired"
    assert "missing" in kb.last_rebuild_reason
    store.close()


def test_stale_index_is_detected_and_rebuilt(settings, model, tmp_path_factory):
    store, kb = open_kb(settings)
    kb.add([incident_from_dict(d) for d in INCIDENTS[:2]])
    old = tmp_path_factory.mktemp("old")
    shutil.copy(settings.kb_index_path, old / "kb.faiss")
    shutil.copy(manifest_path(settings.kb_index_path), old / "manifest")
    kb.add([incident_from_dict(INCIDENTS[2])])
    store.close()
    # an older, internally valid index file + manifest comes back (backup restore, copy from elsewhere)
    shutil.copy(old / "kb.faiss", settings.kb_index_path)
    shutil.copy(old / "manifest", manifest_path(settings.kb_index_path))
    store, kb = open_kb(settings)
    assert kb.search("certificate expired at the gateway", k=1)[0].incident.id == "tls-expired"
    assert "stale" in kb.last_rebuild_reason
    store.close()


def test_growing_past_the_flat_limit_switches_to_ivf(settings, model):
    store, kb = open_kb(settings, flat_max=40)
    many = [incident_from_dict({"id": f"svc{i}", "title": f"service svc{i} error burst number {i}",
                                "root_cause_service": f"svc{i}"}) for i in range(45)]
    kb.add(many[:30])
    assert kb._index.kind == "flat"
    kb.add(many[30:] + [incident_from_dict(d) for d in INCIDENTS])
    assert kb._index.kind == "ivf" and kb._index.ntotal == 50
    kb.delete("svc3")
    store.close()
    store, kb = open_kb(settings, flat_max=40)
    assert kb.search("redis evicted keys, cache misses", k=1)[0].incident.id == "cache-storm"
    assert kb.last_rebuild_reason is None and kb._index.kind == "ivf" and kb._index.ntotal == 49
    store.close()


def test_vector_index_ivf_matches_flat_on_clustered_vectors(tmp_path):
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(50, 64))
    vecs = centers[rng.integers(0, 50, 3000)] + 0.3 * rng.normal(size=(3000, 64))
    vecs = (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
    ids = np.arange(100, 3100)
    flat = VectorIndex.build(ids, vecs, 64, flat_max=10_000)
    ivf = VectorIndex.build(ids, vecs, 64, flat_max=1000)
    assert (flat.kind, ivf.kind) == ("flat", "ivf")
    q = vecs[:50] + 0.05 * rng.normal(size=(50, 64)).astype(np.float32)
    _, a = flat.search(q, 10)
    _, b = ivf.search(q, 10)
    recall = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a, b)])
    assert recall >= 0.9
    assert ivf.remove(np.array([100, 101])) == 2
    state = {"count": 2998, "digest": "x", "model": "m", "dim": 64}
    ivf.save(tmp_path / "i.faiss", state)
    again = VectorIndex.load(tmp_path / "i.faiss", state)
    assert again.kind == "ivf" and again.ntotal == 2998 and again.nprobe == ivf.nprobe


def test_bad_input_is_refused_with_clear_errors(filled):
    _, kb = filled
    with pytest.raises(InvalidInput, match="title must not be empty"):
        incident_from_dict({"title": "   "})
    with pytest.raises(PayloadTooLarge):
        incident_from_dict({"title": "x", "summary": "y" * (MAX_TEXT_CHARS + 1)})
    with pytest.raises(InvalidInput, match="root_cause_kind"):
        incident_from_dict({"title": "x", "root_cause_kind": "cosmic rays"})
    with pytest.raises(InvalidInput, match="unknown incident field"):
        incident_from_dict({"title": "x", "severity": 3})
    with pytest.raises(InvalidInput, match="RFC 3339"):
        incident_from_dict({"title": "x", "created_at": "yesterday"})
    with pytest.raises(InvalidInput, match="already exist"):
        kb.add([incident_from_dict(INCIDENTS[0])])
    with pytest.raises(NotFound):
        kb.get("nope")
    with pytest.raises(NotFound):
        kb.delete("nope")
    with pytest.raises(InvalidInput, match="query must not be empty"):
        kb.search("  ")
    with pytest.raises(PayloadTooLarge):
        kb.search("z" * (MAX_TEXT_CHARS + 1))
    with pytest.raises(InvalidInput, match="k must be"):
        kb.search("pool", k=0)
    assert kb.count() == len(INCIDENTS)


def test_malformed_jsonl_line_imports_nothing(tmp_path, filled):
    _, kb = filled
    good = json.dumps({"id": "n1", "title": "queue backlog in billing"})
    path = tmp_path / "more.jsonl"
    path.write_text(good + "\n\n" + json.dumps({"id": "n2", "title": "ok"}) + "\n{not json\n")
    with pytest.raises(InvalidInput, match=r"more\.jsonl:4: not valid JSON"):
        read_jsonl(path)
    path.write_text(good + "\n" + json.dumps({"id": "n3", "summary": "no title"}) + "\n")
    with pytest.raises(InvalidInput, match=r"more\.jsonl:2: title must not be empty"):
        read_jsonl(path)
    path.write_text(good + "\n" + good + "\n")
    with pytest.raises(InvalidInput, match=r"more\.jsonl:2: duplicate incident id 'n1'"):
        read_jsonl(path)
    with pytest.raises(NotFound):
        read_jsonl(tmp_path / "absent.jsonl")
    assert kb.count() == len(INCIDENTS)
    path.write_text(good + "\n" + json.dumps({"id": "pay-pool", "title": "clash"}) + "\n")
    with pytest.raises(InvalidInput, match="already exist"):
        kb.add(read_jsonl(path))
    assert kb.count() == len(INCIDENTS)  # n1 was not half-written
    with pytest.raises(NotFound):
        kb.get("n1")


def test_read_only_store_reads_and_searches(settings, model):
    store = open_store(settings)
    store.close()
    ro = open_store(settings, read_only=True)
    kb = KnowledgeBase(ro, settings)  # no incidents table yet: an empty KB, not an error
    assert (kb.count(), kb.list(), kb.search("anything")) == (0, [], [])
    ro.close()
    store, kb = open_kb(settings)
    kb.add([incident_from_dict(INCIDENTS[1])])
    store.close()
    ro = open_store(settings, read_only=True)
    kb = KnowledgeBase(ro, settings)
    assert kb.search("redis evictions", k=1)[0].incident.id == "cache-storm" and kb.last_rebuild_reason is None
    ro.close()


def test_kb_imports_only_earlier_stages():
    import ast
    from pathlib import Path

    allowed = {"rca.model", "rca.config", "rca.errors", "rca.kb", "rca.store", "rca.ingest", "rca.templates",
               "rca.anomaly", "rca.localize"}
    kb_dir = Path(__file__).resolve().parents[1] / "rca" / "kb"
    for path in kb_dir.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                if name.startswith("rca"):
                    assert ".".join(name.split(".")[:2]) in allowed, f"{path.name} imports {name}"
