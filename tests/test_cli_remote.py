"""The CLI next to a running `rca serve` on the same home: the server holds DuckDB's lock, so read and
analysis commands go through its REST API (same JSON as the API), write-only commands say what to do.

Every server here is a real `rca serve` process (``--port 0``: it advertises the port it got in
``<home>/server.json``), fed over OTLP/HTTP; the CLI runs in this process (click's runner) or as
its own process where the exit code and stderr are the point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from rca.config import Settings
from rca.interfaces.cli.main import cli
from rca.interfaces.runtime import Runtime
from tests.conftest import RCA, start_serve, stop_serve

TID = "0af7651916cd43dd8448eb211c80319c"
TID2 = "4bf92f3577b34da6a3ce929d0e0e4736"
T0 = 1_714_564_800_000_000_000  # 2024-05-01T12:00:00Z


def _attrs(service: str) -> dict:
    return {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}


def _span(tid: str, sid: str, parent: str, name: str, start_ms: int, dur_ms: int, error: str = "") -> dict:
    span = {"traceId": tid, "spanId": sid, "parentSpanId": parent, "name": name,
            "startTimeUnixNano": str(T0 + start_ms * 10**6), "endTimeUnixNano": str(T0 + (start_ms + dur_ms) * 10**6)}
    if error:
        span["status"] = {"code": 2, "message": error}
    return span


TRACES = {"resourceSpans": [
    {"resource": _attrs("frontend"), "scopeSpans": [{"spans": [
        _span(TID, "00000000000000a1", "", "POST /checkout", 0, 100),
        _span(TID2, "00000000000000b1", "", "GET /cart", 5_000, 20)]}]},
    {"resource": _attrs("payment"), "scopeSpans": [{"spans": [
        _span(TID, "00000000000000a2", "00000000000000a1", "Charge", 10, 60, error="card [declined]")]}]},
]}
LOGS = {"resourceLogs": [{"resource": _attrs("payment"), "scopeLogs": [{"logRecords": [
    {"timeUnixNano": str(T0 + 20 * 10**6), "severityNumber": 17, "traceId": TID, "spanId": "00000000000000a2",
     "body": {"stringValue": "card processor timed out after 50ms"}}]}]}]}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A running `rca serve` holding a home with two traces and a log line."""
    home = tmp_path_factory.mktemp("served") / "home"
    proc, url = start_serve(home)
    try:
        for path, doc in (("/v1/traces", TRACES), ("/v1/logs", LOGS)):
            r = httpx.post(f"{url}{path}", json=doc, timeout=60)
            assert r.status_code == 200 and not r.json().get("partialSuccess"), r.text
        yield home, url, proc
    finally:
        stop_serve(proc)


def _cli(home: Path, *args: str):
    result = CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _rca(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*RCA, "--home", str(home), *args], capture_output=True, text=True, timeout=120)


def test_serve_advertises_where_it_answers(served):
    home, url, proc = served
    doc = json.loads((home / "server.json").read_text())
    assert doc["pid"] == proc.pid and doc["url"] == url and doc["store"] == str(home / "rca.duckdb")
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
    # the store really is locked for anyone else: the CLI below cannot be reading it directly
    from rca.errors import StoreError

    with pytest.raises(StoreError, match="Could not set lock"):
        Runtime(Settings(home=home), read_only=True).store


def test_read_commands_answer_through_the_server(served):
    home, url, _ = served
    api = httpx.Client(base_url=url, timeout=60)
    assert json.loads(_cli(home, "trace", TID.upper(), "--json")) == api.get(f"/api/v1/traces/{TID}").json()
    tree = _cli(home, "trace", TID)
    assert "frontend POST /checkout  100 ms (self 40 ms)" in tree
    assert "payment Charge  60 ms (self 60 ms) ERROR card [declined]" in tree
    assert tree.index("Charge") < tree.index("card processor timed out after 50ms")

    listed = json.loads(_cli(home, "traces", "--json"))
    assert listed == api.get("/api/v1/traces", params={"limit": 50}).json()
    assert [(t["trace_id"], t["n_spans"], t["error"]) for t in listed["traces"]] == [(TID2, 1, False), (TID, 2, True)]
    window = ["--service", "frontend", "--since", "2024-05-01T11:59:00Z", "--until", "1714564803"]
    assert json.loads(_cli(home, "traces", *window, "--json")) == api.get(
        "/api/v1/traces", params={"service": "frontend", "start": "2024-05-01T11:59:00Z", "end": "1714564803",
                                  "limit": 50}).json()
    assert [t["trace_id"] for t in json.loads(_cli(home, "traces", *window, "--json"))["traces"]] == [TID]
    assert "frontend: POST /checkout" in _cli(home, "traces")

    stats = json.loads(_cli(home, "stats", "--json"))
    assert stats == {**api.get("/api/v1/stats").json(), "services": api.get("/api/v1/services").json()["services"]}
    assert (stats["n_spans"], stats["n_traces"], stats["n_logs"]) == (3, 2, 1)
    assert "3 spans in 2 traces, 1 logs" in _cli(home, "stats")

    timeline = json.loads(_cli(home, "timeline", TID, "--json"))
    assert timeline == api.get("/api/v1/timeline", params={"trace_id": TID}).json()
    assert "card processor timed out after 50ms" in _cli(home, "timeline", TID)


def test_explain_goes_through_the_server(served):
    home, url, _ = served
    doc = json.loads(_cli(home, "explain", TID, "--no-kb", "--json"))
    direct = httpx.post(f"{url}/api/v1/explain", json={"trace_id": TID, "use_kb": False}, timeout=300).json()
    assert doc["query"] == direct["query"] == {"trace_id": TID}
    assert doc["hypotheses"] and doc["hypotheses"] == direct["hypotheses"]
    assert httpx.get(f"{url}/api/v1/explain/{doc['id']}", timeout=60).json()["id"] == doc["id"]  # the server kept it
    text = _cli(home, "explain", TID, "--no-kb")
    top = doc["hypotheses"][0]
    assert f"#1 {top['service']}" in text and "[span]" in text and "confirm or reject: rca feedback" in text


def test_templates_through_the_server(served):
    home, url, _ = served
    r = _rca(home, "templates", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report == httpx.get(f"{url}/api/v1/templates", params={"limit": 50}, timeout=60).json()
    assert report["n_templates"] >= 1
    assert "templates" in _cli(home, "templates")


def test_errors_through_the_server_keep_message_and_exit_code(served):
    home, _, _ = served
    r = _rca(home, "trace", "ab" * 16)
    assert (r.returncode, r.stderr.strip()) == (1, f"error: trace {'ab' * 16} not found")
    r = _rca(home, "trace", "not-hex")
    assert r.returncode == 2 and r.stderr.startswith("error: not a trace id: 'not-hex'")
    r = _rca(home, "explain", TID, "--start", "-15m")
    assert (r.returncode, r.stderr.strip()) == (2, "error: give either a trace id or a window, not both")


def test_commands_that_write_the_store_say_what_to_do(served, tmp_path):
    home, url, proc = served
    data = tmp_path / "more.jsonl"
    data.write_text(json.dumps(TRACES) + "\n")
    held = f"error: the store {home / 'rca.duckdb'} is in use by `rca serve` (pid {proc.pid}, {url})"
    r = _rca(home, "ingest", str(data))
    assert r.returncode == 1
    assert r.stderr.strip() == (f"{held}: send telemetry to it over OTLP/HTTP (POST {url}/v1/traces, /v1/logs, "
                                "/v1/metrics), or stop the server and run `rca ingest` again")
    r = _rca(home, "train")
    assert (r.returncode, r.stderr.strip()) == (1, f"{held}; stop the server and run `rca train` again")
    r = _rca(home, "serve", "--port", "0")
    assert (r.returncode, r.stderr.strip()) == (1, f"{held}: it already serves this home")
    assert httpx.get(f"{url}/api/v1/stats", timeout=60).json()["n_spans"] == 3  # nothing was written


def test_a_stale_server_file_does_not_hide_the_lock_error(served):
    home, url, proc = served
    path = home / "server.json"
    original = path.read_text()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    port_closed = url.rsplit(":", 1)[0] + ":1"
    try:
        for stale in ({"url": url, "pid": dead.pid}, {"url": port_closed, "pid": proc.pid}, "{not json"):
            path.write_text(stale if isinstance(stale, str) else json.dumps(stale))
            r = _rca(home, "stats")
            assert r.returncode == 1, stale
            assert r.stderr.startswith(f"error: cannot open store {home / 'rca.duckdb'}: IO Error: Could not set "
                                       "lock on file") and f"(PID {proc.pid})" in r.stderr, r.stderr
    finally:
        path.write_text(original)
    assert json.loads(_cli(home, "stats", "--json"))["n_spans"] == 3


def test_a_stale_server_file_without_a_server_is_ignored(settings):
    from rca.ingest.otlp_json import decode_json
    from rca.interfaces.ingestion import store_batch

    runtime = Runtime(settings)
    store_batch(runtime, decode_json(TRACES))
    runtime.close()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (settings.home / "server.json").write_text(json.dumps({"url": "http://127.0.0.1:1", "pid": dead.pid}))
    assert json.loads(_cli(settings.home, "stats", "--json"))["n_spans"] == 3
    assert "0af7651916cd43dd8448eb211c80319c" in _cli(settings.home, "traces")


def test_serve_withdraws_its_file_on_sigterm_and_the_cli_prints_the_same_here(tmp_path):
    home = tmp_path / "home"
    proc, url = start_serve(home)
    commands = [("trace", TID), ("trace", TID, "--json"), ("traces",), ("traces", "--service", "payment", "--json"),
                ("stats",), ("stats", "--json"), ("timeline", TID, "--json"),
                ("timeline", "--start", "1714564800", "--end", "1714564806", "--service", "payment", "--json")]
    try:
        for path, doc in (("/v1/traces", TRACES), ("/v1/logs", LOGS)):
            assert httpx.post(f"{url}{path}", json=doc, timeout=60).status_code == 200
        through_server = [_cli(home, *args) for args in commands]
    finally:
        rc = stop_serve(proc)
    assert rc == 0 and not (home / "server.json").exists()
    assert not list((home / "rca.duckdb.ingest-log").glob("*.wal"))  # closed: everything stored in DuckDB
    here = [_cli(home, *args) for args in commands]  # the store is free now: read directly
    for args, remote, local in zip(commands, through_server, here):
        assert remote == local, args
    assert json.loads(here[-1])["services"] == ["payment"] and json.loads(here[-1])["events"]


def test_serve_on_a_taken_port_says_so_and_leaves_the_store_free(tmp_path):
    import socket

    home = tmp_path / "home"
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        r = subprocess.run([*RCA, "--home", str(home), "serve", "--port", str(port)], capture_output=True, text=True,
                           timeout=300)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith(f"error: cannot listen on 127.0.0.1:{port}: "), r.stderr
    assert not (home / "server.json").exists()
    assert json.loads(_cli(home, "stats", "--json"))["n_spans"] == 0  # the store was closed again


def test_only_a_loopback_server_is_trusted_with_the_store():
    from rca.interfaces.remote import _is_loopback

    assert all(map(_is_loopback, ["http://127.0.0.1:4318", "http://127.8.9.1:1", "http://[::1]:4318",
                                  "http://localhost:4318"]))
    assert not any(map(_is_loopback, ["http://10.11.12.13:4318", "http://example.com:4318", "http://0.0.0.0:1",
                                      "http://[::]:1", "not a url", ""]))


def test_reachable_url_turns_wildcards_into_loopback():
    from rca.interfaces.remote import reachable_url

    assert reachable_url("0.0.0.0", 4318) == "http://127.0.0.1:4318"
    assert reachable_url("::", 4318) == "http://[::1]:4318"
    assert reachable_url("::1", 80) == "http://[::1]:80"
    assert reachable_url("127.0.0.1", 1) == "http://127.0.0.1:1"


@pytest.mark.slow
def test_knowledge_base_and_feedback_through_the_server(served, tmp_path):
    home, url, _ = served
    out = json.loads(_cli(home, "kb", "add", "--id", "pay-decline", "--title", "card processor declines",
                          "--service", "payment", "--kind", "error", "--fix", "rotate the API key", "--json"))
    assert [i["id"] for i in out] == ["pay-decline"]
    jl = tmp_path / "more.jsonl"
    jl.write_text(json.dumps({"id": "dns", "title": "DNS lookups failing in the cluster"}) + "\n")
    assert "imported 1 incident(s)" in _cli(home, "kb", "import", str(jl))
    api = httpx.Client(base_url=url, timeout=120)
    assert json.loads(_cli(home, "kb", "list", "--json")) == api.get("/api/v1/incidents").json()["incidents"]
    assert json.loads(_cli(home, "kb", "show", "dns", "--json")) == api.get("/api/v1/incidents/dns").json()
    hits = json.loads(_cli(home, "kb", "search", "payment card declined", "-k", "1", "--json"))
    assert [h["id"] for h in hits] == ["pay-decline"]
    r = _rca(home, "kb", "reindex")
    assert r.returncode == 1 and "stop the server and run `rca kb reindex` again" in r.stderr
    assert "deleted dns" in _cli(home, "kb", "delete", "dns")
    r = _rca(home, "kb", "show", "dns")
    assert (r.returncode, r.stderr.strip()) == (1, "error: incident dns not found")

    explained = json.loads(_cli(home, "explain", TID, "--json"))
    top = explained["hypotheses"][0]
    fb = json.loads(_cli(home, "feedback", explained["id"], "--confirm", "1", "--fix", "rotate the key", "--json"))
    assert fb["confirmed"] == 1 and fb["incident"]["root_cause_service"] == top["service"]
    assert api.get(f"/api/v1/incidents/explain-{explained['id']}").json()["resolution"] == "rotate the key"
    fb = json.loads(_cli(home, "feedback", explained["id"], "--reject", "1", "--json"))
    assert fb == {"explain_id": explained["id"], "rejected": 1, "service": top["service"], "kind": top["kind"],
                  "withdrawn_incident": f"explain-{explained['id']}"}
    r = _rca(home, "feedback", explained["id"], "--confirm", "99")
    assert (r.returncode, r.stderr.strip()) == (2, f"error: explain {explained['id']} has no hypothesis with rank 99")
