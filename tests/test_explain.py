"""Explain end to end on synthetic traffic with a known answer: a slow callee, an erroring
callee, a noisy caller that is never the answer, and a quiet window with no clear cause."""

from __future__ import annotations

import json

import httpx
import pytest
from click.testing import CliRunner

from rca.ingest.otlp_json import decode_json
from rca.interfaces.cli.main import cli
from rca.interfaces.explaining import explain, train
from rca.interfaces.ingestion import store_batch
from rca.interfaces.runtime import Runtime
from tests import synth


def _ingest(runtime, fault):
    per_service, window, traces = synth.build(fault=fault)
    store_batch(runtime, decode_json(synth.trace_request(per_service)))
    store_batch(runtime, decode_json(synth.logs_request(per_service)))
    return window, traces


@pytest.fixture(scope="module", params=["slow", "error"])
def scenario(request, tmp_path_factory):
    from rca.config import Settings

    home = tmp_path_factory.mktemp(f"explain-{request.param}")
    settings = Settings(home=home)
    runtime = Runtime(settings)
    window, traces = _ingest(runtime, request.param)
    train(runtime)
    yield request.param, runtime, window, traces
    runtime.close()


def test_window_top_hypothesis_is_the_faulty_callee(scenario):
    fault, runtime, (start, end), _ = scenario
    result = explain(runtime, start_ns=start, end_ns=end)
    assert result.hypotheses, result.message
    top = result.hypotheses[0]
    assert top.service == "payment"
    assert top.role == "root_cause"
    assert top.kind == ("latency" if fault == "slow" else "error")
    assert 0.0 <= top.score <= 1.0
    ranked = [h.service for h in result.hypotheses]
    assert "frontend" not in ranked[:1]  # the noisy caller is never the answer
    for h in result.hypotheses:
        if h.service in ("checkout", "frontend"):
            assert h.role in ("propagation", "impact")
    assert all(ev.link.startswith("/api/v1/") for h in result.hypotheses for ev in h.evidence if ev.link)
    if fault == "error":
        kinds = {ev.type for ev in top.evidence}
        assert "log_template" in kinds
        assert any("card processor" in ev.detail for ev in top.evidence)
        from fastapi.testclient import TestClient

        from rca.interfaces.api.app import create_app

        with TestClient(create_app(runtime)) as client:  # template links show the lines they talk about
            for ev in top.evidence:
                if ev.type == "log_template":
                    body = client.get(ev.link).json()
                    assert body["n_total"] > 0 and body["template"] == ev.ref["template"], ev.link


def test_trace_level_origin_is_distinguished_from_waiters(scenario):
    fault, runtime, _, traces = scenario
    for tid in traces[-40:]:
        spans, _ = runtime.store.get_trace(tid)
        if fault == "error" and not (spans["status_code"] == 2).any():
            continue
        result = explain(runtime, trace_id=tid, save=False)
        assert result.hypotheses, result.message
        top = result.hypotheses[0]
        assert (top.service, top.operation, top.role) == ("payment", "Charge", "root_cause")
        assert any(h.role == "impact" and h.service == "frontend" for h in result.hypotheses)
        return
    pytest.fail("no suitable trace in the window")


def test_quiet_window_says_no_clear_root_cause(tmp_path):
    from rca.config import Settings

    runtime = Runtime(Settings(home=tmp_path))
    try:
        (start, end), _ = _ingest(runtime, None)
        result = explain(runtime, start_ns=start, end_ns=end)
        assert result.hypotheses == []
        assert "no clear root cause" in result.message
    finally:
        runtime.close()


def test_api_and_cli_explain(scenario, start_server):
    fault, runtime, (start, end), traces = scenario
    if fault != "slow":
        pytest.skip("one scenario is enough for the interfaces")
    settings = runtime.settings
    runtime.close()  # hand the store to the server process-side runtime
    server = start_server(settings)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        r = client.post("/api/v1/explain", json={"start": str(start // 1_000_000_000),
                                                 "end": str(end // 1_000_000_000)})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["hypotheses"][0]["service"] == "payment"
        assert set(body["hypotheses"][0]) >= {"rank", "service", "operation", "kind", "role", "score", "summary",
                                              "evidence"}
        for ev in body["hypotheses"][0]["evidence"]:  # every evidence link resolves
            assert client.get(ev["link"].split("#")[0]).status_code == 200, ev["link"]
        assert client.get(f"/api/v1/explain/{body['id']}").json()["id"] == body["id"]
        r = client.post("/api/v1/explain", json={"trace_id": traces[-1]})
        assert r.status_code == 200 and r.json()["query"]["trace_id"] == traces[-1]
        r = client.post("/api/v1/explain", json={"trace_id": "ab" * 16})
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        r = client.post("/api/v1/explain", json={"start": str(end), "end": str(start)})
        assert r.status_code == 400 and "after its start" in r.json()["error"]["message"]
        r = client.post("/api/v1/explain", json={})
        assert r.status_code == 400
    server.stop()
    runner = CliRunner()
    res = runner.invoke(cli, ["--home", str(settings.home), "explain", "--start", str(start / 1e9), "--end",
                              str(end / 1e9), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["hypotheses"][0]["service"] == "payment"
    res = runner.invoke(cli, ["--home", str(settings.home), "explain", "--start", str(start / 1e9), "--end",
                              str(end / 1e9)])
    assert res.exit_code == 0 and "#1 payment" in res.output and "/api/v1/" in res.output


def test_clip_cuts_long_texts_at_a_word():
    from rca.localize.evidence import clip

    text = "<*> INFO SeatServiceImpl#54 TraceID: <*> [distributeSeat][TrainNumber start]"
    assert clip(text, len(text)) == text and clip("short", 60) == "short"
    assert clip(text, 40) == "<*> INFO SeatServiceImpl#54 TraceID: …"
    assert clip("x" * 100, 60) == "x" * 60 + " …"  # no space to cut at: cut at the limit
    assert clip("a " + "y" * 100, 60) == "a " + "y" * 58 + " …"  # the only space is too early to cut at
