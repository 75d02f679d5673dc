"""Infer an OTLP severity number from a log body that came without one.

Collector ``filelog`` receivers often ship raw lines with no severity. Most lines still say
their level in text: ``16:42:10.175 INFO  a.c.Controller#75 ...`` (logback),
``2023-01-29 16:42:09.123  WARN 1 --- [main] ...`` (Spring Boot), ``[error]``, ``level=warn``,
``"level":"debug"``, glog's ``E0129 16:42:09.123`` prefix. A line without a level that carries
a stack trace (``Traceback``, ``Caused by:``, ``at com.x.Y(Y.java:12)``, ``FooException:``) is
an ERROR. Anything else is 0 (unspecified).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

TRACE, DEBUG, INFO, WARN, ERROR, FATAL = 1, 5, 9, 13, 17, 21
UNSPECIFIED = 0

LEVELS: dict[str, int] = {
    "trace": TRACE, "finest": TRACE, "finer": TRACE,
    "debug": DEBUG, "fine": DEBUG, "dbug": DEBUG,
    "info": INFO, "information": INFO, "informational": INFO, "notice": INFO + 1,
    "warn": WARN, "warning": WARN, "wrn": WARN,
    "error": ERROR, "err": ERROR, "eror": ERROR, "severe": ERROR,
    "fatal": FATAL, "critical": FATAL, "crit": FATAL, "panic": FATAL, "alert": FATAL, "emerg": FATAL,
    "emergency": FATAL,
}
_GLOG = {"I": INFO, "W": WARN, "E": ERROR, "F": FATAL}

_WORDS = "|".join(sorted(LEVELS, key=len, reverse=True))
_HEAD = 160  # levels are written near the start of a line
_LEVEL = re.compile(
    rf"(?:level|lvl|severity|loglevel)[\"']?\s*[=:]\s*[\"']?(?P<kv>{_WORDS})\b"  # level=warn, "level":"warn"
    rf"|[\[<(](?P<br>{_WORDS})[\]>)]"  # [error] <WARN> (info)
    rf"|^\s*(?P<lead>{_WORDS})\s*:"  # 'Warning: ...', 'error: ...' at line start
    rf"|(?<![\w.\-/])(?P<up>{_WORDS.upper()})(?![\w\-/.])",  # bare upper-case token: ' INFO '
    re.IGNORECASE,
)
_GLOG_PREFIX = re.compile(r"^(?P<g>[IWEF])\d{4} \d{2}:\d{2}:\d{2}")
_STACK = re.compile(
    r"Traceback \(most recent call last\)"
    r"|(?:^|\n)\s*Caused by: "
    r"|(?:^|\n)\s+at [\w$.<>]+\([\w$.]*(?::\d+)?\)"
    r"|\b[A-Z]\w*(?:Exception|Error)(?::|\s*$|\n)"
    r"|\bpanic: |^goroutine \d+ \[running\]",
    re.MULTILINE,
)


def infer_one(body: str) -> int:
    """Severity number of one body; 0 when it says nothing about its level."""
    if not body:
        return UNSPECIFIED
    head = body[:_HEAD]
    glog = _GLOG_PREFIX.match(head)
    if glog:
        return _GLOG[glog.group("g")]
    for match in _LEVEL.finditer(head):
        word = next(g for g in match.groups() if g)
        if match.group("up") and not word.isupper():
            continue  # 'Info' or 'error' in prose is not a level; 'INFO' is
        return LEVELS[word.lower()]
    if _STACK.search(body):
        return ERROR
    return UNSPECIFIED


def infer_severity(bodies: Iterable[str | None]) -> list[int]:
    """OTLP severity numbers (TRACE=1 DEBUG=5 INFO=9 WARN=13 ERROR=17 FATAL=21, 0 unknown)."""
    return [infer_one(b if isinstance(b, str) else "") for b in bodies]
