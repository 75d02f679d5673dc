"""`rca trace`, `rca traces`, `rca stats` on a store filled through the real decoders."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from rca.ingest.jaeger import decode_jaeger
from rca.ingest.otlp_json import decode_json
from rca.interfaces.cli.main import cli
from rca.interfaces.ingestion import store_batch
from rca.interfaces.runtime import Runtime

TID = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def filled_home(settings):
    runtime = Runtime(settings)
    t0 = 1_714_564_800_000_000_000  # 2024-05-01T12:00:00Z
    jaeger = {"data": [{"traceID": TID, "processes": {"p1": {"serviceName": "frontend"},
                                                      "p2": {"serviceName": "payment"}},
                        "spans": [
                            {"spanID": "00000000000000a1", "operationName": "POST /checkout", "processID": "p1",
                             "startTime": t0 // 1000, "duration": 100_000, "references": []},
                            {"spanID": "00000000000000a2", "operationName": "Charge", "processID": "p2",
                             "startTime": t0 // 1000 + 10_000, "duration": 60_000,
                             "references": [{"refType": "CHILD_OF", "spanID": "00000000000000a1"}],
                             "tags": [{"key": "error", "type": "bool", "value": True}]}]}]}
    store_batch(runtime, decode_jaeger(jaeger))
    logs = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name",
                                                           "value": {"stringValue": "payment"}}]},
                              "scopeLogs": [{"logRecords": [{
                                  "timeUnixNano": str(t0 + 20_000_000), "severityNumber": 17,
                                  "body": {"stringValue": "card processor timed out after 50ms"},
                                  "traceId": TID, "spanId": "00000000000000a2"}]}]}]}
    store_batch(runtime, decode_json(logs))
    runtime.close()
    return settings.home


def _run(home, *args):
    return CliRunner().invoke(cli, ["--home", str(home), *args], catch_exceptions=False)


def test_trace_prints_the_span_tree_with_self_times_and_logs(filled_home):
    result = _run(filled_home, "trace", TID)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "frontend POST /checkout  100 ms (self 40 ms)" in out
    assert "payment Charge  60 ms (self 60 ms) ERROR" in out
    assert "card processor timed out after 50ms" in out
    assert out.index("POST /checkout") < out.index("Charge") < out.index("card processor")
    doc = json.loads(_run(filled_home, "trace", TID.upper(), "--json").output)
    assert [s["self_time_ns"] for s in doc["spans"]] == [40_000_000, 60_000_000]
    assert doc["logs"][0]["span_id"] == "00000000000000a2"


def test_traces_lists_and_filters_by_service_and_time(filled_home):
    doc = json.loads(_run(filled_home, "traces", "--json").output)
    assert [(t["trace_id"], t["root_operation"], t["n_spans"], t["error"]) for t in doc["traces"]] == \
        [(TID, "POST /checkout", 2, True)]
    assert "POST /checkout" in _run(filled_home, "traces", "--service", "payment").output
    assert json.loads(_run(filled_home, "traces", "--service", "nobody", "--json").output)["n_traces"] == 0
    within = _run(filled_home, "traces", "--since", "2024-05-01T11:59:00Z", "--until", "1714564900", "--json")
    assert json.loads(within.output)["n_traces"] == 1
    after = _run(filled_home, "traces", "--since", "2024-05-01T12:00:01Z", "--json")
    assert json.loads(after.output)["n_traces"] == 0


def test_stats_summarizes_the_store(filled_home):
    doc = json.loads(_run(filled_home, "stats", "--json").output)
    assert (doc["n_spans"], doc["n_traces"], doc["n_logs"], doc["n_services"]) == (2, 1, 1, 2)
    assert {s["service"] for s in doc["services"]} == {"frontend", "payment"}
    assert "2 spans in 1 traces, 1 logs" in _run(filled_home, "stats").output


def test_unknown_trace_and_bad_time_are_clear_errors(filled_home):
    env_cmd = [sys.executable, "-m", "rca.interfaces.cli.main", "--home", str(filled_home)]
    r = subprocess.run([*env_cmd, "trace", "ab" * 16], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.strip() == f"error: trace {'ab' * 16} not found"
    r = subprocess.run([*env_cmd, "traces", "--since", "last tuesday"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("error: not a time: 'last tuesday'")
