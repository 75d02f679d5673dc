"""`import rca` and `rca --help` load none of the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "faiss", "sentence_transformers", "sklearn")
CHECK = f"""
import sys
{{setup}}
heavy = [m for m in {HEAVY!r} if m in sys.modules]
print(",".join(heavy))
"""


def _loaded(setup: str) -> str:
    r = subprocess.run([sys.executable, "-c", CHECK.format(setup=setup)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_import_rca_is_light():
    assert _loaded("import rca") == ""


def test_rca_help_is_light():
    setup = ("from rca.interfaces.cli.main import main\n"
             "try:\n    main(['--help'])\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
             "sys.stdout.flush()\nprint('---')")
    out = _loaded(setup)
    assert "Usage:" in out and out.rsplit("---", 1)[1].strip() == ""


def test_serve_and_read_commands_help_are_light():
    for cmd in ("serve", "trace", "traces", "stats"):
        setup = ("from rca.interfaces.cli.main import main\n"
                 f"try:\n    main([{cmd!r}, '--help'])\nexcept SystemExit as e:\n    assert e.code in (0, None)\n"
                 "print('---')")
        assert _loaded(setup).rsplit("---", 1)[1].strip() == "", cmd
