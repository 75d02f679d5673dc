"""`rca kb ...` and `rca feedback` through click, on a real --home directory."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from rca.config import Settings
from rca.errors import InvalidInput, NotFound
from rca.interfaces.cli.main import cli
from rca.kb.embed import load_model
from rca.kb.explains import save_explain
from rca.store import open_store


@pytest.fixture(scope="session")
def model():
    return load_model()


@pytest.fixture
def run(tmp_path, model):
    runner = CliRunner()

    def _run(*args):
        return runner.invoke(cli, ["--home", str(tmp_path), *args])

    return _run


def test_add_import_list_show_search_delete(run, tmp_path):
    r = run("kb", "add", "--id", "pay-pool", "--title", "payment DB connection pool exhausted", "--service",
            "payment", "--kind", "resource", "--fix", "raise pool size", "--link", "https://tracker.example/1")
    assert r.exit_code == 0, r.output
    yml = tmp_path / "inc.yaml"
    yml.write_text("id: cache-storm\ntitle: cache eviction storm\nsummary: redis evicted keys, cart slow\n"
                   "root_cause_service: redis\nresolution: raise maxmemory\n")
    assert run("kb", "add", "--file", str(yml)).exit_code == 0
    jl = tmp_path / "more.jsonl"
    jl.write_text("\n".join(json.dumps({"id": f"i{i}", "title": t}) for i, t in
                            enumerate(["TLS certificate expired", "DNS lookups failing in the cluster"])) + "\n")
    r = run("kb", "import", str(jl))
    assert r.exit_code == 0 and "imported 2" in r.output
    listed = json.loads(run("kb", "list", "--json").output)
    assert {i["id"] for i in listed} == {"pay-pool", "cache-storm", "i0", "i1"}
    assert "raise maxmemory" in run("kb", "show", "cache-storm").output
    hits = json.loads(run("kb", "search", "cart slow because redis dropped keys", "-k", "2", "--json").output)
    assert hits[0]["id"] == "cache-storm" and len(hits) == 2 and "similarity" in hits[0]
    assert "cache-storm" in run("kb", "search", "redis evictions").output  # rich table
    info = json.loads(run("kb", "reindex", "--json").output)
    assert info["n_incidents"] == 4 and info["kind"] == "flat"
    assert run("kb", "delete", "cache-storm").exit_code == 0
    r = run("kb", "show", "cache-storm")
    assert r.exit_code == 1 and isinstance(r.exception, NotFound)


def test_bad_input(run, tmp_path):
    jl = tmp_path / "bad.jsonl"
    jl.write_text(json.dumps({"id": "ok", "title": "fine"}) + "\n" + '{"id": "x", "title": ' + "\n")
    r = run("kb", "import", str(jl))
    assert isinstance(r.exception, InvalidInput) and f"{jl}:2" in r.exception.message
    assert json.loads(run("kb", "list", "--json").output) == []
    r = run("kb", "add", "--title", "t", "--file", str(jl))
    assert isinstance(r.exception, InvalidInput)
    r = run("kb", "add", "--summary", "no title")
    assert isinstance(r.exception, InvalidInput) and "title" in r.exception.message
    assert run("kb", "add", "--title", "x", "--kind", "nonsense").exit_code == 2  # click choice
    assert isinstance(run("kb", "delete", "nope").exception, NotFound)


def test_feedback_command(run, tmp_path):
    store = open_store(Settings().with_(home=tmp_path))
    save_explain(store, {"id": "ex1", "fingerprint": {"summary": "payments time out", "services": ["payment"]},
                         "hypotheses": [{"rank": 1, "service": "payment", "kind": "resource", "role": "root_cause",
                                         "score": 0.9, "summary": "pool exhausted"}]})
    store.close()
    r = run("feedback", "ex1", "--confirm", "1", "--fix", "raise pool size")
    assert r.exit_code == 0 and "explain-ex1" in r.output
    shown = json.loads(run("kb", "show", "explain-ex1", "--json").output)
    assert shown["resolution"] == "raise pool size" and shown["fingerprint"]["services"] == ["payment"]
    assert "rejected rank 1" in run("feedback", "ex1", "--reject", "1").output
    assert isinstance(run("feedback", "ex1").exception, InvalidInput)
    assert isinstance(run("feedback", "nope", "--confirm", "1").exception, NotFound)


def test_kb_help_loads_nothing_heavy():
    code = ("import sys; from click.testing import CliRunner; from rca.interfaces.cli.main import cli; "
            "r = CliRunner().invoke(cli, ['kb', '--help']); assert r.exit_code == 0, r.output; "
            "r = CliRunner().invoke(cli, ['feedback', '--help']); assert r.exit_code == 0; "
            "print(sorted(m for m in ('torch', 'faiss', 'sentence_transformers', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
