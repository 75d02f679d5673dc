"""Which templates a time window holds, and which of them are new, rare or error-like.

Reads the stored logs (``template_id``, ``service``, ``time_ns``, ``severity_number``,
``body``) and the template texts of a ``LogTemplates``; never changes either.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from rca.errors import InvalidInput
from rca.templates.severity import ERROR, infer_one

RARE_SHARE = 0.001  # a template with at most this share of the window's lines (or <= 2 lines) is rare


@dataclass(frozen=True)
class TemplateRow:
    template_id: int
    template: str
    count: int
    count_before: int
    first_seen_ns: int
    last_seen_ns: int
    max_severity: int
    new: bool
    rare: bool
    error: bool

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TemplateReport:
    service: str | None
    start_ns: int | None
    end_ns: int | None
    n_lines: int
    n_templates: int
    rows: list[TemplateRow] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "service": self.service, "start_ns": self.start_ns, "end_ns": self.end_ns,
            "n_lines": self.n_lines, "n_templates": self.n_templates,
            "templates": [r.to_dict() for r in self.rows],
        }


def summarize_templates(store, templates, service: str | None = None, start_ns: int | None = None,
                        end_ns: int | None = None, limit: int = 50) -> TemplateReport:
    """Templates seen in [start_ns, end_ns) (optionally one service), most frequent first."""
    if limit < 1:
        raise InvalidInput("limit must be at least 1")
    if start_ns is not None and end_ns is not None and start_ns >= end_ns:
        raise InvalidInput("the window is empty: --since must be before --until")
    lo = -(2**63) if start_ns is None else int(start_ns)
    hi = 2**63 - 1 if end_ns is None else int(end_ns)
    where, params = ["template_id IS NOT NULL", "time_ns < ?"], [lo, lo, lo, lo, lo, hi]
    if service is not None:
        where.append("service = ?")
        params.append(service)
    frame = store.query(
        "SELECT template_id,"
        " count(*) FILTER (WHERE time_ns >= ?) AS count,"
        " count(*) FILTER (WHERE time_ns < ?) AS count_before,"
        " min(time_ns) AS first_seen_ns,"
        " max(time_ns) FILTER (WHERE time_ns >= ?) AS last_seen_ns,"
        " coalesce(max(severity_number) FILTER (WHERE time_ns >= ?), 0) AS max_severity,"
        " any_value(body) FILTER (WHERE time_ns >= ?) AS example"
        f" FROM logs WHERE {' AND '.join(where)} GROUP BY template_id",
        params,
    )
    frame = frame[frame["count"] > 0].copy()
    if frame.empty:
        return TemplateReport(service, start_ns, end_ns, 0, 0, [])
    frame["template_id"] = [templates.canonical_id(t) for t in frame["template_id"]]
    frame = frame.groupby("template_id", as_index=False).agg(
        count=("count", "sum"), count_before=("count_before", "sum"), first_seen_ns=("first_seen_ns", "min"),
        last_seen_ns=("last_seen_ns", "max"), max_severity=("max_severity", "max"), example=("example", "first"))
    n_lines, n_total = int(frame["count"].sum()), int(len(frame.index))
    frame = frame.sort_values(["count", "template_id"], ascending=[False, True]).head(limit)
    rows = []
    for r in frame.itertuples(index=False):
        text = templates.text_or_none(int(r.template_id)) or str(r.example)
        count = int(r.count)
        rows.append(TemplateRow(
            template_id=int(r.template_id), template=text, count=count, count_before=int(r.count_before),
            first_seen_ns=int(r.first_seen_ns), last_seen_ns=int(r.last_seen_ns), max_severity=int(r.max_severity),
            new=start_ns is not None and int(r.count_before) == 0,
            rare=count <= 2 or count <= RARE_SHARE * n_lines,
            error=int(r.max_severity) >= ERROR or infer_one(text) >= ERROR,
        ))
    return TemplateReport(service, start_ns, end_ns, n_lines, n_total, rows)
