"""The real TrainTicket data in ../shared: exact ingest counts, a trace read back with its logs,
and the root-cause evaluation with a floor just under what the analysis reaches (a regression fails)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from rca.config import Settings
from rca.interfaces.cli.main import cli

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nezha-tt-2023-01-29"
KNOWN_TRACE = "93bead877ae15b6d9cdf1c1569881314"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (DATA / "cases.jsonl").exists(), reason="../shared/datasets is absent")]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("nezha")
    res = CliRunner().invoke(cli, ["--home", str(home), "ingest", str(DATA), "--json"])
    assert res.exit_code == 0, res.output
    home.joinpath("ingest.json").write_text(res.output.strip().splitlines()[-1])
    return home


def test_ingest_stores_exactly_the_counts_the_readme_lists(home):
    result = json.loads(home.joinpath("ingest.json").read_text())
    assert result["stored"] == {"spans": 321068, "logs": 168642, "metrics": 807801}
    assert result["rejected"] == {"spans": 0, "logs": 0, "metrics": 0}
    assert result["problems"] == []  # cases.jsonl beside the telemetry is not mistaken for it


def test_known_trace_reads_back_with_its_logs(home):
    res = CliRunner().invoke(cli, ["--home", str(home), "trace", KNOWN_TRACE, "--json"])
    assert res.exit_code == 0, res.output
    view = json.loads(res.output)
    spans = view["spans"]
    assert spans and all(s["trace_id"] == KNOWN_TRACE for s in spans)
    assert sum(1 for s in spans if not s["parent_span_id"]) == 1
    logs = view["logs"]
    assert logs and all(KNOWN_TRACE in lg["body"] for lg in logs)  # TrainTicket prints the trace id in the line
    assert {lg["span_id"] for lg in logs} <= {s["span_id"] for s in spans}


def test_root_cause_eval_floor_and_knowledge_base(home):
    from rca.interfaces.evaluating import evaluate_cases

    result = evaluate_cases(Settings(home=home), DATA / "cases.jsonl", store_home=home, kb_loo=True)
    assert result["n_cases"] == 28
    # floors just under what the analysis reaches today (see the closing note)
    assert result["ac1"] >= 0.75  # reached 0.821 (case 23 is a near-tie between two services)
    assert result["ac3"] >= 0.92  # reached 0.964
    assert result["seconds_per_case"] < 10
    # the knowledge base must not make results worse
    for k in ("ac1", "ac3", "ac5"):
        assert result[f"{k}_with_kb"] >= result[f"{k}_without_kb"], k
