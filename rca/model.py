"""The few dataclasses every stage speaks.

Telemetry moves between stages as columnar tables (pyarrow / pandas) whose
columns are named after the fields below; these dataclasses are the row view
used at the edges (API, CLI, tests) and the result objects of analysis.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Kind = Literal["latency", "error", "resource", "network", "unknown"]
Role = Literal["root_cause", "propagation", "impact"]
EvidenceType = Literal["span", "log_template", "log", "metric", "trace", "incident"]


@dataclass
class Span:
    trace_id: str  # 32 lowercase hex
    span_id: str  # 16 lowercase hex
    parent_span_id: str  # "" for a root
    service: str
    name: str
    start_ns: int
    end_ns: int
    kind: int = 0
    status_code: int = 0  # 0 unset, 1 ok, 2 error
    status_message: str = ""
    pod: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    scope: str = ""

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["duration_ns"] = self.duration_ns
        return d


@dataclass
class LogRecord:
    time_ns: int
    service: str
    body: str
    trace_id: str = ""
    span_id: str = ""
    observed_ns: int = 0
    severity_number: int = 0
    severity_text: str = ""
    pod: str = ""
    template_id: int | None = None
    template: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MetricPoint:
    time_ns: int
    service: str
    name: str
    value: float
    pod: str = ""
    unit: str = ""
    metric_type: str = "gauge"
    attributes: dict[str, Any] = field(default_factory=dict)
    resource: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Evidence:
    type: EvidenceType
    ref: dict[str, Any]
    detail: str
    link: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Hypothesis:
    rank: int
    service: str
    kind: Kind
    role: Role
    score: float  # in [0, 1]
    summary: str
    operation: str | None = None
    evidence: list[Evidence] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["evidence"] = [e.to_dict() for e in self.evidence]
        return d


@dataclass
class Incident:
    """A past incident in the knowledge base."""

    id: str
    title: str
    summary: str = ""
    root_cause_service: str = ""
    root_cause_operation: str = ""
    root_cause_kind: str = "unknown"
    resolution: str = ""
    links: list[str] = field(default_factory=list)
    created_at: str = ""  # RFC 3339
    resolved_at: str = ""
    fingerprint: dict[str, Any] = field(default_factory=dict)
    confirmed: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Explanation:
    """The answer to "why did this trace / this window go wrong?"."""

    id: str
    query: dict[str, Any]  # {"trace_id": ...} or {"start": ns, "end": ns}
    hypotheses: list[Hypothesis] = field(default_factory=list)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    message: str = ""  # e.g. "no clear root cause"
    ranking: list[str] = field(default_factory=list)  # every service considered, most suspect first
    created_ns: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "query": self.query,
            "hypotheses": [h.to_dict() for h in self.hypotheses],
            "fingerprint": self.fingerprint,
            "message": self.message,
            "ranking": self.ranking,
            "created_ns": self.created_ns,
            "seconds": self.seconds,
        }
