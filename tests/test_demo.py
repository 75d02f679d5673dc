"""`rca demo` (the README's main job) end to end: its printed top-1 is the injected root cause."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_top1_is_the_injected_root_cause(tmp_path):
    env = {**os.environ, "RCA_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "rca.interfaces.cli.main", "demo"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "injected root cause: postgres" in out
    assert "top-1 hypothesis: postgres — matches the injected root cause postgres" in out
    assert "/api/v1/" in out  # evidence links are printed
