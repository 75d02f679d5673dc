"""`rca timeline` / GET /api/v1/timeline on the committed simulated sample (two labelled faults)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from click.testing import CliRunner

from rca.config import Settings
from rca.errors import InvalidInput, NotFound
from rca.interfaces.cli.main import cli, main
from rca.interfaces.runtime import Runtime
from rca.localize.timeline import build_timeline
from rca.localize.timeline_events import KIND_RANK
from rca.store.trace_view import read_trace
from rca.timeutil import parse_time

SAMPLE = Path(__file__).resolve().parents[1] / "datasets" / "sample"


@pytest.fixture(scope="module")
def sample_settings(tmp_path_factory) -> Settings:
    from rca.interfaces.cli.ingest_cmd import ingest_paths

    settings = Settings(home=tmp_path_factory.mktemp("timeline") / "home")
    runtime = Runtime(settings)
    try:
        ingest_paths(runtime, [SAMPLE])
    finally:
        runtime.close()
    return settings


@pytest.fixture(scope="module")
def cases() -> dict[str, dict]:
    rows = [json.loads(line) for line in (SAMPLE / "cases.jsonl").read_text().splitlines() if line.strip()]
    return {r["fault_type"]: r for r in rows}


@pytest.fixture
def runtime(sample_settings):
    rt = Runtime(sample_settings, read_only=True)
    yield rt
    rt.close()


def _window(case) -> tuple[int, int]:
    return parse_time(case["window"]["start"]), parse_time(case["window"]["end"])


def _assert_display_order(events: list[dict]) -> None:
    keys = [(e["time_ns"], KIND_RANK[e["kind"]]) for e in events]
    assert keys == sorted(keys)


def test_an_injected_exception_unfolds_from_its_origin_outward(runtime, cases):
    case = cases["exception"]
    start, end = _window(case)
    inject, root = parse_time(case["inject_time"]), case["root_cause"]["service"]
    doc = build_timeline(runtime.store, runtime.templates, start_ns=start, end_ns=end, limit=100_000).to_dict()
    events = doc["events"]
    assert not doc["truncated"] and doc["n_events"] == doc["n_events_total"] == len(events) > 1000
    _assert_display_order(events)
    assert all(start <= e["time_ns"] < end for e in events)
    assert {e["kind"] for e in events} == set(KIND_RANK)
    origins = [e for e in events if e["kind"] == "anomaly" and e["service"] == root and e["data"]["origin"]]
    assert origins and origins[0]["time_ns"] >= inject  # the fault's own errors start at the injection
    first_origin_by_trace: dict[str, int] = {}
    for e in origins:
        first_origin_by_trace.setdefault(e["ref"]["trace_id"], e["time_ns"])
    passed_on = [e for e in events if e["kind"] == "anomaly" and not e["data"]["origin"]
                 and e["ref"]["trace_id"] in first_origin_by_trace]
    assert passed_on  # callers fail because the root cause failed, and never before it did
    assert all(e["time_ns"] >= first_origin_by_trace[e["ref"]["trace_id"]] for e in passed_on)
    assert all(e["link"] == f"/api/v1/traces/{e['ref']['trace_id']}#span-{e['ref']['span_id']}"
               for e in events if e["kind"].startswith("span") or e["kind"] == "anomaly")
    # the root cause's success rate drops after the injection, and that is in the replay
    drops = [e for e in events if e["kind"] == "metric_shift" and e["service"] == root
             and e["ref"]["metric"] == "k8s.pod.success_rate" and e["data"]["state"] == "shifted"]
    assert drops and drops[0]["time_ns"] >= inject and drops[0]["data"]["z"] < -5
    # error logs are flagged and carry their template
    errors = [e for e in events if e["kind"] == "log" and e["flagged"]]
    assert errors and all(e["data"]["severity_number"] >= 17 for e in errors)
    for e in errors[:20]:
        assert e["data"]["template"] == runtime.templates.template_text(e["ref"]["template_id"])


def test_slow_spans_are_flagged_against_their_operation(runtime, cases):
    case = cases["db_lock"]
    start, end = _window(case)
    root = case["root_cause"]["service"]
    doc = build_timeline(runtime.store, runtime.templates, start_ns=start, end_ns=end, services=[root],
                         limit=100_000).to_dict()
    slow = [e for e in doc["events"] if e["kind"] == "anomaly" and "slow" in e["data"]["reasons"]]
    assert len(slow) >= 10 and {e["service"] for e in slow} == {root}
    assert min(e["time_ns"] for e in slow) >= parse_time(case["inject_time"])
    for e in slow[:5]:
        assert e["data"]["self_z"] > 4 and e["data"]["self_ns"] > 1.4 * e["data"]["baseline_self_ns"]
        view = read_trace(runtime.store, e["ref"]["trace_id"])  # self time agrees with the trace view's
        assert e["data"]["self_ns"] == view.self_time_ns[e["ref"]["span_id"]]
    before = build_timeline(runtime.store, runtime.templates, start_ns=start - 120 * 10**9, end_ns=start,
                            services=[root], limit=100_000).to_dict()
    assert not [e for e in before["events"] if e["kind"] == "anomaly" and "slow" in e["data"]["reasons"]]


def test_a_trace_replays_every_span_in_causal_order(runtime, cases):
    start, end = _window(cases["exception"])
    tid = runtime.store.query("SELECT trace_id FROM spans WHERE status_code = 2 AND start_ns BETWEEN ? AND ? "
                              "ORDER BY start_ns LIMIT 1", [start, end])["trace_id"][0]
    view = read_trace(runtime.store, tid)
    doc = build_timeline(runtime.store, runtime.templates, trace_id=tid.upper()).to_dict()
    assert doc["query"]["trace_id"] == tid and doc["start_ns"] == view.start_ns
    spans = [e for e in doc["events"] if e["kind"] in ("span_start", "span_end")]
    assert len(spans) == 2 * len(view.spans)
    pos = {(e["kind"], e["ref"].get("span_id")): i for i, e in enumerate(doc["events"])}
    for s in view.spans:
        assert pos[("span_start", s.span_id)] < pos[("span_end", s.span_id)]
        if s.parent_span_id in view.self_time_ns:
            assert pos[("span_start", s.parent_span_id)] <= pos[("span_start", s.span_id)]
            assert pos[("span_end", s.span_id)] <= pos[("span_end", s.parent_span_id)]
        if s.status_code == 2:
            assert pos[("span_end", s.span_id)] < pos[("anomaly", s.span_id)]
    assert [e["ref"]["span_id"] for e in doc["events"] if e["kind"] == "log"] == [r.span_id for r in view.logs]
    _assert_display_order(doc["events"])
    only = build_timeline(runtime.store, runtime.templates, trace_id=tid, services=["currency"]).to_dict()
    assert only["events"] and {e["service"] for e in only["events"]} == {"currency"}


def test_at_shows_spans_in_flight_last_logs_and_metric_values(runtime, cases):
    start, end = _window(cases["db_lock"])
    store = runtime.store
    slow = store.query("SELECT * FROM spans WHERE start_ns BETWEEN ? AND ? ORDER BY duration_ns DESC LIMIT 1",
                       [start, end]).iloc[0]
    at = int(slow.start_ns + slow.duration_ns // 2)
    doc = build_timeline(store, runtime.templates, start_ns=start, end_ns=end, at_ns=at, limit=50).to_dict()
    state = doc["at"]
    assert state["time_ns"] == at
    expected = store.query("SELECT service, count(*) n FROM spans WHERE start_ns <= ? AND end_ns > ? "
                           "GROUP BY service", [at, at])
    assert state["n_in_flight"] == dict(zip(expected["service"], expected["n"].astype(int).tolist()))
    running = {s["span_id"]: s for s in state["in_flight"][slow.service]}
    assert running[slow.span_id]["elapsed_ns"] == at - slow.start_ns
    for service, recs in state["last_logs"].items():
        last = store.query("SELECT max(time_ns) t FROM logs WHERE service = ? AND time_ns <= ?", [service, at])
        assert recs[-1]["time_ns"] == last["t"][0] and len(recs) <= 5
        assert [r["time_ns"] for r in recs] == sorted(r["time_ns"] for r in recs)
    points = store.query("SELECT service, pod, name, value, time_ns FROM metrics WHERE time_ns <= ? "
                         "AND time_ns > ? - 300000000000", [at, at])
    latest = points.sort_values("time_ns").groupby(["service", "pod", "name"]).tail(1)
    for (service, name), value in latest.groupby(["service", "name"])["value"].mean().items():
        assert np.isclose(state["metrics"][service][name], value)
    # in a trace, the state is that trace's own
    trace = build_timeline(store, runtime.templates, trace_id=slow.trace_id, at_ns=at).to_dict()["at"]
    ids = {s["span_id"] for spans in trace["in_flight"].values() for s in spans}
    assert slow.span_id in ids and ids <= set(read_trace(store, slow.trace_id).self_time_ns)
    before = build_timeline(store, runtime.templates, trace_id=slow.trace_id, at_ns=int(slow.start_ns) - 1)
    assert before.state["in_flight"] == {}


def test_truncation_keeps_anomalies_and_shifts_first(runtime, cases):
    start, end = _window(cases["exception"])
    full = build_timeline(runtime.store, runtime.templates, start_ns=start, end_ns=end, limit=100_000)
    first = [e for e in full.events if (e["kind"] == "anomaly" and e["data"]["origin"]) or e["kind"] == "metric_shift"]
    limit = len(first) + 7
    cut = build_timeline(runtime.store, runtime.templates, start_ns=start, end_ns=end, limit=limit).to_dict()
    assert cut["truncated"] and cut["n_events"] == limit and cut["n_events_total"] == len(full.events)
    assert "showing" in cut["note"]
    kept = {(e["kind"], json.dumps(e["ref"], sort_keys=True), e["time_ns"]) for e in cut["events"]}
    assert all((e["kind"], json.dumps(e["ref"], sort_keys=True), e["time_ns"]) in kept for e in first)
    _assert_display_order(cut["events"])


def test_bad_arguments_are_invalid_input_and_unknown_traces_not_found(runtime):
    store, templates = runtime.store, runtime.templates
    with pytest.raises(InvalidInput):
        build_timeline(store, templates)
    with pytest.raises(InvalidInput):
        build_timeline(store, templates, start_ns=2, end_ns=1)
    with pytest.raises(InvalidInput):
        build_timeline(store, templates, start_ns=1)
    with pytest.raises(InvalidInput):
        build_timeline(store, templates, trace_id="ab", start_ns=1, end_ns=2)
    with pytest.raises(InvalidInput):
        build_timeline(store, templates, trace_id="not-hex")
    with pytest.raises(InvalidInput):
        build_timeline(store, templates, start_ns=1, end_ns=5, at_ns=9)
    with pytest.raises(InvalidInput):
        build_timeline(store, templates, start_ns=1, end_ns=5, limit=0)
    with pytest.raises(NotFound):
        build_timeline(store, templates, trace_id="ab" * 16)


def _cli(settings, *args):
    return CliRunner().invoke(cli, ["--home", str(settings.home), "timeline", *args])


def _main(capsys, settings, *args) -> tuple[int, str]:
    """Run the real entry point (with its error mapping): exit code and the stderr line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["--home", str(settings.home), "timeline", *args])
    return exit_.value.code, capsys.readouterr().err.strip()


def test_cli_json_equals_the_api_json_and_errors_match(sample_settings, cases, start_server, capsys):
    case = cases["exception"]
    with Runtime(sample_settings, read_only=True).store as store:
        tid = store.query("SELECT trace_id FROM spans WHERE status_code = 2 AND start_ns >= ? ORDER BY start_ns "
                          "LIMIT 1", [parse_time(case["inject_time"])])["trace_id"][0]
    at = case["inject_time"].replace(":05:00", ":05:30")
    queries = [
        ([tid, "--at", at], {"trace_id": tid, "at": at}),
        (["--start", case["window"]["start"], "--end", case["window"]["end"], "--service", "currency",
          "--service", "frontend", "--at", at, "--limit", "300"],
         [("start", case["window"]["start"]), ("end", case["window"]["end"]), ("service", "currency"),
          ("service", "frontend"), ("at", at), ("limit", "300")]),
        (["--start", case["window"]["start"], "--end", case["window"]["end"]],
         {"start": case["window"]["start"], "end": case["window"]["end"]}),
    ]
    cli_docs = []
    for args, _ in queries:
        result = _cli(sample_settings, *args, "--json")
        assert result.exit_code == 0, result.output
        cli_docs.append(json.loads(result.output))
    human = _cli(sample_settings, tid, "--at", at)
    assert human.exit_code == 0 and "anomaly" in human.output and "state at" in human.output
    assert _main(capsys, sample_settings, "ab" * 16) == (1, f"error: trace {'ab' * 16} not found")
    assert _main(capsys, sample_settings, "--start", "2024-05-01T08:05:00Z", "--end", "2024-05-01T08:04:00Z") == \
        (2, "error: end must be after start")
    assert _main(capsys, sample_settings)[0] == 2
    code, message = _main(capsys, sample_settings, "--start", "yesterday-ish", "--end", "now")
    assert code == 2 and message.startswith("error: --start: not a time")

    server = start_server(sample_settings)
    for (_, params), doc in zip(queries, cli_docs):
        resp = httpx.get(f"{server.url}/api/v1/timeline", params=params, timeout=60)
        assert resp.status_code == 200, resp.text
        assert resp.json() == doc
    assert cli_docs[1]["query"]["services"] == ["currency", "frontend"] and cli_docs[1]["n_events"] == 300
    missing = httpx.get(f"{server.url}/api/v1/timeline", params={"trace_id": "ab" * 16}, timeout=60)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    for params, status in [({}, 400), ({"start": "2024-05-01T08:05:00Z", "end": "2024-05-01T08:04:00Z"}, 400),
                           ({"start": "soon", "end": "now"}, 400), ({"trace_id": tid, "limit": "0"}, 422)]:
        resp = httpx.get(f"{server.url}/api/v1/timeline", params=params, timeout=60)
        assert resp.status_code == status, (params, resp.text)
        assert set(resp.json()["error"]) == {"code", "message", "details"}


def test_empty_windows_and_at_alone(runtime, cases):
    empty = build_timeline(runtime.store, runtime.templates, start_ns=parse_time("2020-01-01T00:00:00Z"),
                           end_ns=parse_time("2020-01-01T00:10:00Z"), at_ns=parse_time("2020-01-01T00:05:00Z"))
    assert empty.to_dict()["events"] == [] and empty.state["in_flight"] == {} and empty.state["metrics"] == {}
    nobody = build_timeline(runtime.store, runtime.templates, start_ns=parse_time(cases["exception"]["inject_time"]),
                            end_ns=parse_time(cases["exception"]["window"]["end"]), services=["no-such-service"])
    assert nobody.n_events_total == 0 and nobody.note is None
    at = parse_time(cases["exception"]["inject_time"]) + 30 * 10**9
    alone = build_timeline(runtime.store, runtime.templates, at_ns=at, limit=20).to_dict()
    assert alone["end_ns"] == at + 1 and alone["start_ns"] == at - 300 * 10**9
    assert alone["n_events"] == 20 < alone["n_events_total"] and alone["at"]["metrics"]
