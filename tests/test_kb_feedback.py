"""Similar incidents in explain results, feedback, and the leave-one-out evaluation."""

from __future__ import annotations

import pytest

from rca.config import Settings
from rca.errors import InvalidInput, NotFound
from rca.kb.base import KnowledgeBase
from rca.kb.embed import load_model
from rca.kb.explains import load_explain, save_explain
from rca.kb.feedback import record_feedback
from rca.kb.incidents import incident_from_dict
from rca.kb.loo import kb_leave_one_out, kind_for_fault
from rca.kb.similar import MAX_BOOST, PastCause, adjust_scores, attach_similar
from rca.model import Hypothesis
from rca.store import open_store

POOL_FP = {
    "summary": "checkout requests time out; payment service cannot get database connections",
    "services": ["frontend", "checkout", "payment", "payment-db"],
    "operations": ["payment/Charge", "checkout/PlaceOrder"],
    "templates": ["Timeout waiting for connection from pool <*>", "HikariPool-1 - Connection is not available"],
    "metric_shifts": ["payment:db_pool_active", "checkout:latency_p99"],
}
CACHE_FP = {
    "summary": "cart latency high, cache hit ratio collapsed",
    "services": ["frontend", "cart", "redis"],
    "operations": ["cart/GetCart"],
    "templates": ["cache miss for key <*>", "evicted <*> keys due to maxmemory"],
    "metric_shifts": ["redis:evicted_keys", "cart:latency_p99"],
}


def hyps(*items):
    return [Hypothesis(rank=i + 1, service=s, kind=k, role="root_cause", score=sc, summary=f"{k} in {s}")
            for i, (s, k, sc) in enumerate(items)]


@pytest.fixture(scope="session")
def model():
    return load_model()


@pytest.fixture
def kb(tmp_path, model):
    settings = Settings().with_(home=tmp_path)
    store = open_store(settings)
    yield KnowledgeBase(store, settings)
    store.close()


def test_adjust_scores_is_bounded_and_keeps_strong_leads():
    close = hyps(("checkout", "latency", 0.60), ("payment", "resource", 0.55))
    out = adjust_scores(close, [PastCause("payment", "resource", 1.0)])
    assert [h.service for h in out] == ["payment", "checkout"] and [h.rank for h in out] == [1, 2]
    assert out[0].score == pytest.approx(0.55 + MAX_BOOST)
    strong = hyps(("checkout", "latency", 0.90), ("payment", "resource", 0.70))
    out = adjust_scores(strong, [PastCause("payment", "resource", 1.0)] * 5)
    assert [h.service for h in out] == ["checkout", "payment"]  # a lead > MAX_BOOST is never overtaken
    edge = hyps(("a", "error", 0.99), ("b", "error", 0.02))
    out = adjust_scores(edge, [PastCause("a", "error", 1.0), PastCause("b", "error", 1.0, confirmed=False)])
    assert out[0].score == 1.0 and out[1].score == 0.0  # clipped to [0, 1]
    weak = adjust_scores(close, [PastCause("payment", "resource", 0.55)])  # not "very similar": no change
    assert [(h.service, h.score) for h in weak] == [("checkout", 0.60), ("payment", 0.55)]
    assert close[1].score == 0.55 and close[1].rank == 2  # input untouched


def test_attach_similar_adds_incident_evidence_and_boosts(kb):
    kb.add([incident_from_dict({"id": "pool-1", "title": "payment DB connection pool exhausted",
                                "summary": POOL_FP["summary"], "root_cause_service": "payment",
                                "root_cause_kind": "resource", "resolution": "raise maxPoolSize, fix leak",
                                "fingerprint": POOL_FP}),
            incident_from_dict({"id": "cache-1", "title": "cache eviction storm", "summary": CACHE_FP["summary"],
                                "root_cause_service": "redis", "root_cause_kind": "resource",
                                "resolution": "raise maxmemory", "fingerprint": CACHE_FP})])
    fp = dict(POOL_FP, summary="orders failing: payment can't obtain a DB connection, pool at max")
    before = hyps(("checkout", "latency", 0.62), ("payment", "resource", 0.58), ("frontend", "latency", 0.3))
    after = attach_similar(kb, before, fp, k=2)
    assert [h.service for h in after][:2] == ["payment", "checkout"]
    top = after[0]
    ev = [e for e in top.evidence if e.type == "incident"]
    assert ev and ev[0].ref["incident_id"] == "pool-1" and "raise maxPoolSize" in ev[0].detail
    assert ev[0].link == "/api/v1/incidents/pool-1" and 0.6 < ev[0].ref["similarity"] <= 1.0
    assert 0.58 < top.score <= 0.58 + MAX_BOOST
    assert all(0.0 <= h.score <= 1.0 for h in after)
    assert not before[1].evidence  # input untouched
    strong = hyps(("checkout", "latency", 0.95), ("payment", "resource", 0.58))
    assert [h.service for h in attach_similar(kb, strong, fp)] == ["checkout", "payment"]


def test_feedback_confirm_creates_then_updates_incident_and_reject_lowers(kb):
    result = {"id": "ex1", "fingerprint": CACHE_FP,
              "hypotheses": [h.to_dict() for h in hyps(("cart", "latency", 0.6), ("redis", "resource", 0.55))]}
    assert save_explain(kb.store, result, {"service": "cart"}) == "ex1"
    assert load_explain(kb.store, "ex1")["query"] == {"service": "cart"}
    out = record_feedback(kb, "ex1", confirm=2, fix="raise maxmemory")
    inc = kb.get("explain-ex1")
    assert out["incident"]["id"] == inc.id and inc.root_cause_service == "redis"
    assert inc.fingerprint["templates"] == CACHE_FP["templates"] and inc.resolution == "raise maxmemory"
    record_feedback(kb, "ex1", confirm=1)  # changes its mind: same incident updated, fix kept
    inc = kb.get("explain-ex1")
    assert (inc.root_cause_service, inc.resolution, kb.count()) == ("cart", "raise maxmemory", 1)
    assert kb.search("redis evicting keys, cart slow", k=1)[0].incident.root_cause_service == "cart"

    out = record_feedback(kb, "ex1", reject=1)  # rejecting the confirmed one withdraws it
    assert out["withdrawn_incident"] == "explain-ex1" and kb.count() == 0
    similar = dict(CACHE_FP, summary="cart is slow and the cache hit ratio dropped")
    again = attach_similar(kb, hyps(("cart", "latency", 0.60), ("redis", "resource", 0.55)), similar)
    assert [h.service for h in again] == ["redis", "cart"] and again[1].score < 0.60
    unrelated = attach_similar(kb, hyps(("cart", "latency", 0.60), ("redis", "resource", 0.55)), POOL_FP)
    assert [(h.service, h.score) for h in unrelated] == [("cart", 0.60), ("redis", 0.55)]


def test_feedback_bad_input(kb):
    save_explain(kb.store, {"id": "ex2", "fingerprint": POOL_FP,
                            "hypotheses": [h.to_dict() for h in hyps(("payment", "resource", 0.7))]})
    with pytest.raises(NotFound):
        record_feedback(kb, "nope", confirm=1)
    with pytest.raises(InvalidInput, match="exactly one"):
        record_feedback(kb, "ex2")
    with pytest.raises(InvalidInput, match="exactly one"):
        record_feedback(kb, "ex2", confirm=1, reject=1)
    with pytest.raises(InvalidInput, match="no hypothesis with rank 7"):
        record_feedback(kb, "ex2", confirm=7)
    with pytest.raises(InvalidInput, match="rank must be an integer"):
        record_feedback(kb, "ex2", confirm="1")
    with pytest.raises(InvalidInput):
        save_explain(kb.store, {"hypotheses": []})
    assert kb.count() == 0


def test_kind_for_fault():
    assert [kind_for_fault(f) for f in ("cpu_contention", "exception", "return", "network_delay", "weird")] == [
        "resource", "error", "error", "latency", "unknown"]


def test_leave_one_out_uses_only_other_cases(model):
    def case(cid, truth, fp, order):
        return {"case_id": cid, "truth_service": truth, "fault_type": "cpu_contention", "fingerprint": fp,
                "hypotheses": [h.to_dict() for h in hyps(*[(s, "resource", sc) for s, sc in order])]}

    pool2 = dict(POOL_FP, summary="payments failing, no free DB connections in the pool")
    cases = [
        case("a", "payment", POOL_FP, [("checkout", 0.60), ("payment", 0.55)]),
        case("b", "payment", pool2, [("checkout", 0.61), ("payment", 0.57)]),
        case("c", "redis", CACHE_FP, [("redis", 0.70), ("cart", 0.40)]),
    ]
    out = kb_leave_one_out(cases, k=2)
    by = {r["case_id"]: r for r in out}
    assert all(r["case_id"] not in [n["case_id"] for n in r["neighbours"]] for r in out)
    assert by["a"]["baseline"] == ["checkout", "payment"] and by["a"]["ranking"] == ["payment", "checkout"]
    assert by["a"]["neighbours"][0]["case_id"] == "b"
    assert by["c"]["ranking"] == ["redis", "cart"]  # its only neighbours are unrelated: nothing moves
    alone = kb_leave_one_out([cases[0], cases[2]], k=2)  # without b, a has no similar past case
    assert alone[0]["ranking"] == ["checkout", "payment"]
    with pytest.raises(InvalidInput):
        kb_leave_one_out([cases[0], cases[0]])
    assert kb_leave_one_out([]) == []


def test_attach_similar_on_an_empty_kb_changes_nothing(kb):
    before = hyps(("checkout", "latency", 0.62), ("payment", "resource", 0.58))
    after = attach_similar(kb, before, POOL_FP)
    assert [(h.rank, h.service, h.score, h.evidence) for h in after] == [
        (h.rank, h.service, h.score, h.evidence) for h in before]
    assert after[0] is not before[0] and attach_similar(kb, [], POOL_FP) == []
