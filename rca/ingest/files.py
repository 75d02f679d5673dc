"""Telemetry files -> Batches: OTLP JSON lines (the Collector's file exporter, optionally
gzipped), OTLP protobuf files, and Jaeger JSON (`/api/traces` exports).

Bad lines are reported as ``file:line: reason`` and skipped, never silently.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rca.errors import InvalidInput, NotFound
from rca.ingest.batch import Batch
from rca.ingest.otlp_json import decode_json, signal_of

SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".pb", ".pb.gz", ".binpb", ".binpb.gz", ".otlp")


@dataclass
class Problem:
    where: str  # "path:line"
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}"


def find_files(paths: list[str | Path]) -> list[Path]:
    """Expand files and directories (recursively) into telemetry files, sorted for a stable order."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*")
                              if f.is_file() and f.name.endswith(SUFFIXES) and _looks_like_telemetry(f)))
        elif p.is_file():
            out.append(p)
        else:
            raise NotFound(f"no such file or directory: {p}", {"path": str(p)})
    return out


def _looks_like_telemetry(path: Path) -> bool:
    """In a directory, skip JSON files that are plainly something else (e.g. a `cases.jsonl` of labels)."""
    if ".json" not in path.name.lower():
        return True
    try:
        with _open(path) as fh:
            head = fh.read(4096)
    except (OSError, EOFError, gzip.BadGzipFile):
        return True  # let the reader report it
    text = head.decode("utf-8", "replace").lstrip()
    if not text.startswith("{"):
        return True
    keys = ("resourceSpans", "resource_spans", "resourceLogs", "resource_logs", "resourceMetrics",
            "resource_metrics", '"data"')
    return any(k in text[:4096] for k in keys)


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def _signal_from_name(name: str) -> str | None:
    low = name.lower()
    for key, signal in (("trace", "traces"), ("span", "traces"), ("log", "logs"), ("metric", "metrics")):
        if key in low:
            return signal
    return None


def read_file(path: Path, problems: list[Problem]) -> Iterator[tuple[Batch, int]]:
    """Yield (batch, bytes consumed so far) for one file; append problems for bad lines."""
    name = path.name.lower()
    try:
        if ".pb" in name or ".binpb" in name or name.endswith(".otlp"):
            yield from _read_proto(path, problems)
            return
        with _open(path) as fh:
            if ".jsonl" not in name:
                yield from _read_json_doc(path, fh.read(), problems)
                return
            consumed = 0
            for lineno, line in enumerate(fh, 1):
                consumed += len(line)
                if not line.strip():
                    continue
                try:
                    batch = _decode_doc(json.loads(line))
                except (ValueError, InvalidInput) as exc:
                    problems.append(Problem(f"{path}:{lineno}", _reason(exc)))
                    continue
                for err in batch.errors:
                    problems.append(Problem(f"{path}:{lineno}", err))
                yield batch, consumed
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        problems.append(Problem(str(path), f"unreadable: {exc}"))


def _decode_doc(doc) -> Batch:
    """A parsed JSON document: a Jaeger `/api/traces` export, or an OTLP export request."""
    if isinstance(doc, dict) and "data" in doc and signal_of(doc) is None:
        from rca.ingest.jaeger import decode_jaeger

        return decode_jaeger(doc)
    return decode_json(doc)


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, InvalidInput) else f"malformed JSON: {exc}"


def _read_json_doc(path: Path, data: bytes, problems: list[Problem]) -> Iterator[tuple[Batch, int]]:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        problems.append(Problem(f"{path}:1", f"malformed JSON: {exc}"))
        return
    try:
        batch = _decode_doc(doc)
    except InvalidInput as exc:
        problems.append(Problem(f"{path}:1", exc.message))
        return
    for err in batch.errors:
        problems.append(Problem(f"{path}:1", err))
    yield batch, len(data)


def _read_proto(path: Path, problems: list[Problem]) -> Iterator[tuple[Batch, int]]:
    from rca.ingest.otlp_proto import decode_proto

    signal = _signal_from_name(path.name)
    if signal is None:
        problems.append(Problem(str(path), "cannot tell the signal of a protobuf file: name it *traces*, *logs* or *metrics*"))
        return
    with _open(path) as fh:
        data = fh.read()
    try:
        batch = decode_proto(data, signal)
    except InvalidInput as exc:
        problems.append(Problem(str(path), exc.message))
        return
    for err in batch.errors:
        problems.append(Problem(str(path), err))
    yield batch, path.stat().st_size
