"""The Dockerfile is plain and valid: known instructions, the CMD we document, COPY sources that exist."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KNOWN = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER", "WORKDIR",
         "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text()
    logical, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    assert not buf, "dangling line continuation"
    out = []
    for line in logical:
        word, _, rest = line.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_instructions_are_valid_and_complete():
    instructions = _instructions()
    assert all(word in KNOWN for word, _ in instructions), instructions
    assert instructions[0] == ("FROM", "python:3.11-slim")
    args = dict(instructions)
    assert json.loads(args["CMD"]) == ["rca", "serve", "--host", "0.0.0.0"]
    assert args["EXPOSE"] == "4318"
    assert json.loads(args["VOLUME"]) == ["/data"]
    assert "RCA_HOME=/data" in args["ENV"].split()
    runs = [rest for word, rest in instructions if word == "RUN"]
    torch_run = next(r for r in runs if "torch==2.13.0" in r)
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch_run
    assert runs.index(torch_run) < runs.index("pip install .")


def test_dockerfile_copies_files_that_exist():
    copies = [shlex.split(rest) for word, rest in _instructions() if word == "COPY"]
    assert copies
    for parts in copies:
        for src in parts[:-1]:
            assert (ROOT / src).exists(), f"COPY source {src} is missing"
