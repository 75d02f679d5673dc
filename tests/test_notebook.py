"""The walkthrough notebook runs from top to bottom in a fresh kernel and draws its two figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "rca_walkthrough.ipynb"


def kernel_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the ``python3`` kernel this interpreter: a kernelspec whose argv is ``sys.executable``.

    The spec ipykernel installs says just ``python``; whether that is this venv depends on PATH and
    on how jupyter_client resolves it, so the test pins it with a spec of its own on JUPYTER_PATH.
    """
    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (rca test)", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def outputs_of(nb) -> list[dict]:
    return [out for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])]


def text_of(outputs: list[dict]) -> str:
    return "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream" and o.get("name") == "stdout")


def test_committed_notebook_has_no_outputs():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert outputs_of(nb) == []
    assert all(c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


@pytest.mark.slow
def test_notebook_runs_and_draws_both_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import nbformat
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    kernel_env(tmp_path, monkeypatch)
    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == sys.executable
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # raises CellExecutionError (with the traceback) if any cell fails
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(run_dir)}}).execute()

    outputs = outputs_of(nb)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if o.get("output_type") == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) == 2  # accuracy per fault kind, latency around one incident
    printed = text_of(outputs)
    assert "overall over 20 cases: AC@1 " in printed
    for kind in ("latency", "exception", "db_lock", "retry_storm", "network_delay"):
        assert f"\n{kind} " in printed or printed.startswith(f"{kind} ")  # one row per fault kind
    assert "explain ranked: " in printed and "at rank " in printed
    assert list(run_dir.iterdir()) == []  # the notebook writes only into its own temporary directory
