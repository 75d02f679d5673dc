"""Incidents as rows: the table, validation of user input, and reading JSON/YAML/JSONL files."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rca.errors import InvalidInput, NotFound, PayloadTooLarge
from rca.kb.text import MAX_TEXT_CHARS, check_fingerprint, check_text
from rca.model import Incident

KINDS = ("latency", "error", "resource", "network", "unknown")
MAX_FILE_BYTES = 50 * 1024 * 1024
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

INCIDENTS_DDL = """
CREATE TABLE IF NOT EXISTS incidents (
    id VARCHAR PRIMARY KEY,
    vec_id BIGINT NOT NULL UNIQUE,
    title VARCHAR NOT NULL,
    summary VARCHAR,
    root_cause_service VARCHAR,
    root_cause_operation VARCHAR,
    root_cause_kind VARCHAR,
    resolution VARCHAR,
    links JSON,
    created_at VARCHAR,
    resolved_at VARCHAR,
    fingerprint JSON,
    confirmed BOOLEAN,
    updated_ns BIGINT NOT NULL,
    model VARCHAR NOT NULL,
    embedding BLOB NOT NULL
)"""
INCIDENT_VEC_SEQ = "CREATE SEQUENCE IF NOT EXISTS incidents_vec_id START 1"
FIELDS = [f.name for f in fields(Incident)]


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_incident_id() -> str:
    return "inc-" + uuid.uuid4().hex[:12]


def _check_time(value: Any, field: str) -> str:
    value = check_text(value, field)
    if not value:
        return ""
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"{field} is not an RFC 3339 time: {value!r}", {"field": field}) from exc
    return value


def incident_from_dict(data: Any) -> Incident:
    """Validate user input (flags, JSON/YAML, API body) into an Incident; raises InvalidInput."""
    if not isinstance(data, dict):
        raise InvalidInput("an incident must be an object")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidInput(f"unknown incident field(s): {', '.join(unknown)}", {"fields": unknown})
    inc_id = data.get("id") or new_incident_id()
    if not isinstance(inc_id, str) or not _ID_RE.match(inc_id):
        raise InvalidInput(f"invalid incident id {inc_id!r} (letters, digits, . _ : -; at most 128)", {"field": "id"})
    kind = data.get("root_cause_kind") or "unknown"
    if kind not in KINDS:
        raise InvalidInput(f"root_cause_kind must be one of {', '.join(KINDS)}", {"field": "root_cause_kind"})
    links = data.get("links") or []
    if isinstance(links, str):
        links = [links]
    if not isinstance(links, list) or not all(isinstance(x, str) for x in links):
        raise InvalidInput("links must be a list of strings", {"field": "links"})
    confirmed = data.get("confirmed", True)
    if not isinstance(confirmed, bool):
        raise InvalidInput("confirmed must be true or false", {"field": "confirmed"})
    inc = Incident(
        id=inc_id,
        title=check_text(data.get("title"), "title", required=True),
        summary=check_text(data.get("summary"), "summary"),
        root_cause_service=check_text(data.get("root_cause_service"), "root_cause_service"),
        root_cause_operation=check_text(data.get("root_cause_operation"), "root_cause_operation"),
        root_cause_kind=kind,
        resolution=check_text(data.get("resolution"), "resolution"),
        links=[check_text(x, "links") for x in links if x.strip()],
        created_at=_check_time(data.get("created_at"), "created_at") or now_rfc3339(),
        resolved_at=_check_time(data.get("resolved_at"), "resolved_at"),
        fingerprint=check_fingerprint(data.get("fingerprint")),
        confirmed=confirmed,
    )
    if len(inc.title) + len(inc.summary) > MAX_TEXT_CHARS:
        raise PayloadTooLarge(f"title + summary exceed {MAX_TEXT_CHARS} characters", {"limit": MAX_TEXT_CHARS})
    return inc


def incident_from_row(row: dict[str, Any]) -> Incident:
    return Incident(
        id=row["id"], title=row["title"], summary=row["summary"] or "",
        root_cause_service=row["root_cause_service"] or "", root_cause_operation=row["root_cause_operation"] or "",
        root_cause_kind=row["root_cause_kind"] or "unknown", resolution=row["resolution"] or "",
        links=json.loads(row["links"]) if row["links"] else [], created_at=row["created_at"] or "",
        resolved_at=row["resolved_at"] or "", fingerprint=json.loads(row["fingerprint"]) if row["fingerprint"] else {},
        confirmed=bool(row["confirmed"]),
    )


def _read_bytes(path: Path) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"no such file: {path}", {"path": str(path)})
    if path.stat().st_size > MAX_FILE_BYTES:
        raise PayloadTooLarge(f"{path} is larger than {MAX_FILE_BYTES} bytes", {"path": str(path)})
    return path.read_bytes()


def read_incident_file(path: Path) -> list[Incident]:
    """One incident (object) or several (list) from a .json / .yaml / .yml file."""
    import yaml

    raw = _read_bytes(path)
    try:
        text = raw.decode("utf-8")
        data = json.loads(text) if Path(path).suffix.lower() == ".json" else yaml.safe_load(text)
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{path}: not valid JSON/YAML: {exc}", {"path": str(path)}) from exc
    items = data if isinstance(data, list) else [data]
    out = []
    for i, item in enumerate(items):
        try:
            out.append(incident_from_dict(item))
        except InvalidInput as exc:
            where = f"{path}" + (f" item {i + 1}" if isinstance(data, list) else "")
            raise type(exc)(f"{where}: {exc.message}", dict(exc.details, path=str(path))) from exc
    check_unique(out, [f"{path} item {i + 1}" for i in range(len(out))])
    return out


def read_jsonl(path: Path) -> list[Incident]:
    """Every line one incident; the first bad line fails the whole file (reported as file:line)."""
    raw = _read_bytes(path)
    out: list[Incident] = []
    where: list[str] = []
    for lineno, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        loc = f"{path}:{lineno}"
        try:
            data = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise InvalidInput(f"{loc}: not valid JSON: {exc}", {"path": str(path), "line": lineno}) from exc
        try:
            out.append(incident_from_dict(data))
        except InvalidInput as exc:
            raise type(exc)(f"{loc}: {exc.message}", dict(exc.details, path=str(path), line=lineno)) from exc
        where.append(loc)
    if not out:
        raise InvalidInput(f"{path}: no incidents in file", {"path": str(path)})
    check_unique(out, where)
    return out


def check_unique(incidents: list[Incident], where: list[str]) -> None:
    seen: dict[str, str] = {}
    for inc, loc in zip(incidents, where):
        if inc.id in seen:
            raise InvalidInput(f"{loc}: duplicate incident id {inc.id!r} (first at {seen[inc.id]})",
                               {"id": inc.id})
        seen[inc.id] = loc
