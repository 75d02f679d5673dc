"""The one text an incident or an explain result is embedded as.

Both sides are built by the same function from the same fields (summary, log
templates, metric shifts, services, operations) so their embeddings compare.
The most descriptive parts come first: the model reads at most 256 word pieces.
"""

from __future__ import annotations

from typing import Any, Iterable

from rca.errors import InvalidInput, PayloadTooLarge
from rca.model import Hypothesis, Incident

MAX_TEXT_CHARS = 20_000
FINGERPRINT_KEYS = ("services", "operations", "templates", "metric_shifts", "summary")
_LIST_LIMITS = {"templates": 8, "metric_shifts": 10, "services": 12, "operations": 12}


def check_text(value: Any, field: str, *, required: bool = False) -> str:
    """A clean string for ``field``: no non-strings, nothing over MAX_TEXT_CHARS, non-empty if required."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", {"field": field})
    if len(value) > MAX_TEXT_CHARS:
        raise PayloadTooLarge(
            f"{field} is {len(value)} characters; the limit is {MAX_TEXT_CHARS}",
            {"field": field, "limit": MAX_TEXT_CHARS, "length": len(value)},
        )
    value = value.strip()
    if required and not value:
        raise InvalidInput(f"{field} must not be empty", {"field": field})
    return value


def check_fingerprint(fp: Any) -> dict[str, Any]:
    """Validate a fingerprint dict (lists of strings + a summary) and return a clean copy."""
    if fp is None:
        return {}
    if not isinstance(fp, dict):
        raise InvalidInput("fingerprint must be an object", {"field": "fingerprint"})
    out: dict[str, Any] = {}
    for key, value in fp.items():
        if key == "summary":
            out[key] = check_text(value, "fingerprint.summary")
        elif key in _LIST_LIMITS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InvalidInput(f"fingerprint.{key} must be a list of strings", {"field": f"fingerprint.{key}"})
            check_text(" ".join(value), f"fingerprint.{key}")
            out[key] = list(value)
        else:
            out[key] = value  # extra keys are kept, not embedded
    return out


def _section(label: str, items: Iterable[str], limit: int) -> str:
    seen: list[str] = []
    for item in items:
        item = " ".join(str(item).split())
        if item and item not in seen:
            seen.append(item)
        if len(seen) == limit:
            break
    return f"{label}: " + "; ".join(seen) if seen else ""


def text_for_fingerprint(summary: str, fingerprint: dict[str, Any], title: str = "") -> str:
    """title. summary / logs / metrics / services / operations, capped at MAX_TEXT_CHARS."""
    head = ". ".join(p.strip().rstrip(".") for p in (title, summary) if p and p.strip())
    parts = [head] if head else []
    for key, label in (("templates", "logs"), ("metric_shifts", "metrics"),
                       ("services", "services"), ("operations", "operations")):
        part = _section(label, fingerprint.get(key) or [], _LIST_LIMITS[key])
        if part:
            parts.append(part)
    return "\n".join(parts)[:MAX_TEXT_CHARS]


def text_for_incident(incident: Incident) -> str:
    fp = incident.fingerprint or {}
    summary = incident.summary or fp.get("summary", "")
    return text_for_fingerprint(summary, fp, title=incident.title)


def text_for_explain(hypotheses: list[Hypothesis], fingerprint: dict[str, Any]) -> str:
    """The explain side: the fingerprint's summary (else the top hypotheses' summaries) + telemetry."""
    fp = fingerprint or {}
    summary = (fp.get("summary") or "").strip()
    if not summary:
        summary = ". ".join(h.summary for h in sorted(hypotheses, key=lambda h: h.rank)[:3] if h.summary)
    return text_for_fingerprint(summary, fp)
