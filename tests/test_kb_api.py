"""/api/v1/incidents and /api/v1/explain/{id}/feedback through the real FastAPI app."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from rca.config import Settings
from rca.interfaces.api.app import create_app
from rca.interfaces.runtime import Runtime
from rca.kb.embed import load_model
from rca.kb.explains import save_explain
from rca.kb.text import MAX_TEXT_CHARS

POOL = {"id": "pay-pool", "title": "payment DB connection pool exhausted",
        "summary": "checkout timeouts, payment threads waiting for JDBC connections",
        "root_cause_service": "payment", "root_cause_kind": "resource", "resolution": "raise pool size",
        "links": ["https://tracker.example/INC-1"]}
CACHE = {"id": "cache-storm", "title": "cache eviction storm", "summary": "redis evicted keys, cart slow",
         "root_cause_service": "redis", "root_cause_kind": "resource", "resolution": "raise maxmemory"}


@pytest.fixture(scope="session")
def model():
    return load_model()


@pytest.fixture
def client(tmp_path, model):
    runtime = Runtime(Settings().with_(home=tmp_path))
    with TestClient(create_app(runtime)) as c:
        yield c
    runtime.close()


def test_incident_crud_and_search(client):
    r = client.post("/api/v1/incidents", json=POOL)
    assert r.status_code == 201 and r.json()["id"] == "pay-pool" and r.json()["links"] == POOL["links"]
    r = client.post("/api/v1/incidents", json=[CACHE, {"title": "TLS certificate expired on the gateway"}])
    assert r.status_code == 201 and len(r.json()["incidents"]) == 2
    listed = client.get("/api/v1/incidents").json()
    assert listed["total"] == 3 and {i["id"] for i in listed["incidents"]} >= {"pay-pool", "cache-storm"}
    assert client.get("/api/v1/incidents/pay-pool").json()["resolution"] == "raise pool size"
    r = client.get("/api/v1/incidents/search", params={"q": "no free database connections for payments", "k": 2})
    res = r.json()["results"]
    assert r.status_code == 200 and len(res) == 2 and res[0]["id"] == "pay-pool"
    assert res[0]["similarity"] > res[1]["similarity"]
    assert client.delete("/api/v1/incidents/pay-pool").json() == {"deleted": "pay-pool"}
    r = client.get("/api/v1/incidents/search", params={"q": "no free database connections for payments", "k": 5})
    assert "pay-pool" not in [x["id"] for x in r.json()["results"]]


def test_errors_have_one_shape(client):
    r = client.get("/api/v1/incidents/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert client.delete("/api/v1/incidents/nope").status_code == 404
    r = client.post("/api/v1/incidents", json={"summary": "no title"})
    assert r.status_code == 400 and "title must not be empty" in r.json()["error"]["message"]
    r = client.post("/api/v1/incidents", json={"title": "x" * (MAX_TEXT_CHARS + 1)})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    r = client.post("/api/v1/incidents", json=[CACHE, {"title": "ok", "root_cause_kind": "bogus"}])
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("item 2:")
    assert client.get("/api/v1/incidents").json()["total"] == 0  # nothing half-written
    r = client.get("/api/v1/incidents/search", params={"q": "  "})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_input"
    assert client.get("/api/v1/incidents/search", params={"q": "x", "k": 0}).status_code == 422
    assert client.get("/api/v1/incidents/search").status_code == 422
    client.post("/api/v1/incidents", json=CACHE)
    r = client.post("/api/v1/incidents", json=CACHE)
    assert r.status_code == 400 and "already exist" in r.json()["error"]["message"]


def test_feedback_route(client):
    runtime = client.app.state.runtime
    save_explain(runtime.store, {"id": "ex9", "fingerprint": {"summary": "cart slow, cache misses",
                                                              "services": ["cart", "redis"]},
                                 "hypotheses": [{"rank": 1, "service": "redis", "kind": "resource",
                                                 "role": "root_cause", "score": 0.8, "summary": "redis evictions"}]})
    r = client.post("/api/v1/explain/ex9/feedback", json={"confirm": 1, "fix": "raise maxmemory"})
    assert r.status_code == 200 and r.json()["incident"]["root_cause_service"] == "redis"
    assert client.get("/api/v1/incidents/explain-ex9").json()["resolution"] == "raise maxmemory"
    r = client.post("/api/v1/explain/ex9/feedback", json={"reject": 1})
    assert r.status_code == 200 and r.json()["withdrawn_incident"] == "explain-ex9"
    assert client.post("/api/v1/explain/nope/feedback", json={"confirm": 1}).status_code == 404
    r = client.post("/api/v1/explain/ex9/feedback", json={"confirm": 1, "because": "x"})
    assert r.status_code == 400 and "because" in r.json()["error"]["message"]
    assert client.post("/api/v1/explain/ex9/feedback", json={"confirm": 5}).status_code == 400
