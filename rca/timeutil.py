"""Times as people type them (ISO 8601, Unix seconds, "now", "-15m") <-> Unix nanoseconds."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from rca.errors import InvalidInput

_RELATIVE = re.compile(r"-?(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\Z")
_UNITS_NS = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9}
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?\Z")


def now_ns() -> int:
    return time.time_ns()


def _from_whole_number(n: int) -> int:
    size = abs(n)
    if size >= 10**17:
        return n
    if size >= 10**14:
        return n * 10**3
    if size >= 10**11:
        return n * 10**6
    return n * 10**9


def parse_time(text: str | int | float, now: int | None = None) -> int:
    """ISO 8601 (naive = UTC), a Unix timestamp, ``now``, or ``-15m``/``2h`` (that long ago) -> Unix ns.

    A Unix timestamp is in seconds (int or float), except whole numbers too large to be seconds,
    which are read by magnitude as milliseconds (>= 1e11), microseconds (>= 1e14) or nanoseconds
    (>= 1e17) - so the ns times rca itself prints and puts in links can be passed back.
    """
    if isinstance(text, bool):
        raise InvalidInput(f"not a time: {text!r}")
    if isinstance(text, int):
        return _from_whole_number(text)
    if isinstance(text, float):
        return int(round(text * 10**9))
    s = str(text).strip()
    if not s:
        raise InvalidInput("empty time")
    if _NUMBER.match(s):
        if "." not in s:
            return _from_whole_number(int(s))
        whole, _, frac = s.lstrip("-").partition(".")
        ns = int(whole) * 10**9 + int((frac + "000000000")[:9])
        return -ns if s.startswith("-") else ns
    ref = now_ns() if now is None else now
    if s.lower() == "now":
        return ref
    rel = _RELATIVE.match(s.lower())
    if rel:
        return ref - int(float(rel.group(1)) * _UNITS_NS[rel.group(2)])
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"not a time: {s!r} (use ISO 8601 like 2024-05-01T12:00:00Z, Unix seconds, 'now' or '-15m')"
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    delta = dt - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def format_ns(ns: int | None) -> str:
    """Unix ns -> ``2024-05-01T12:00:00.123456Z`` (UTC, microseconds); '' for None."""
    if ns is None:
        return ""
    secs, rem = divmod(int(ns), 10**9)
    dt = datetime.fromtimestamp(secs, tz=timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{rem // 1000:06d}Z"


def format_duration(ns: int | float | None) -> str:
    """Nanoseconds -> a short human duration: ``850 ns``, ``12.3 ms``, ``4.50 s``."""
    if ns is None:
        return ""
    ns = float(ns)
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if abs(ns) >= scale:
            v = ns / scale
            return f"{v:.3g} {unit}" if abs(v) < 100 else f"{v:.0f} {unit}"
    return f"{ns:.0f} ns"
