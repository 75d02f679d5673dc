"""The unit every decoder produces: columnar rows per table plus what was rejected.

Decoders (OTLP protobuf, OTLP JSON, Jaeger) fill plain Python lists column by
column and call ``Batch.from_columns``; the store appends the resulting
pyarrow tables in bulk.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow as pa

from rca.schema import LOG_COLUMNS, METRIC_COLUMNS, SPAN_COLUMNS

_ARROW = {"VARCHAR": pa.string(), "JSON": pa.string(), "BIGINT": pa.int64(), "TINYINT": pa.int8(),
          "INTEGER": pa.int32(), "DOUBLE": pa.float64()}
# Columns that come from a record's resource or scope: one value per resource for a whole request (the
# resource's JSON is ~200 bytes, repeated for every span), so dictionary-encoded (the value once, an index
# per row). DuckDB stores them as VARCHAR like the rest and reads them so from Arrow.
PER_RESOURCE = ("service", "pod", "resource", "scope")
PER_RESOURCE_TYPE = pa.dictionary(pa.int32(), pa.string())
SCHEMAS = {
    name: pa.schema([(c, PER_RESOURCE_TYPE if c in PER_RESOURCE else _ARROW[t]) for c, t in cols.items()])
    for name, cols in (("spans", SPAN_COLUMNS), ("logs", LOG_COLUMNS), ("metrics", METRIC_COLUMNS))
}
SIGNAL_OF_TABLE = {"spans": "traces", "logs": "logs", "metrics": "metrics"}


@dataclass
class Batch:
    """Decoded rows (``tables``) plus the count and reasons of rejected records."""

    tables: dict[str, pa.Table] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=lambda: {"spans": 0, "logs": 0, "metrics": 0})
    errors: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {name: (t.num_rows if t is not None else 0) for name, t in self.tables.items()}

    def reject(self, table: str, reason: str, n: int = 1) -> None:
        self.rejected[table] += n
        if len(self.errors) < 20:
            self.errors.append(reason)

    def extend(self, other: "Batch") -> None:
        for name, t in other.tables.items():
            mine = self.tables.get(name)
            self.tables[name] = t if mine is None else pa.concat_tables([mine, t])
        for k, v in other.rejected.items():
            self.rejected[k] = self.rejected.get(k, 0) + v
        self.errors.extend(other.errors[: max(0, 20 - len(self.errors))])

    @staticmethod
    def table_from_columns(table: str, columns: dict[str, list]) -> pa.Table:
        schema = SCHEMAS[table]
        arrays = []
        n = len(next(iter(columns.values()))) if columns else 0
        for fld in schema:
            col = columns.get(fld.name)
            if col is None:
                arrays.append(pa.nulls(n, fld.type))
            else:
                arrays.append(pa.array(col, type=fld.type))
        return pa.Table.from_arrays(arrays, schema=schema)


def to_json(value) -> str:
    """Compact JSON for attribute maps; non-finite floats become strings (JSON has none)."""
    if not value:
        return "{}" if isinstance(value, dict) or value is None else "[]"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str, allow_nan=False) \
        if _finite(value) else json.dumps(_clean(value), separators=(",", ":"), ensure_ascii=False, default=str)


def _finite(v) -> bool:
    if isinstance(v, float):
        return v == v and v not in (float("inf"), float("-inf"))
    if isinstance(v, dict):
        return all(_finite(x) for x in v.values())
    if isinstance(v, list):
        return all(_finite(x) for x in v)
    return True


def _clean(v):
    if isinstance(v, float) and not _finite(v):
        return str(v)
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def body_text(value) -> str:
    """A log body as stored: strings as they are, structured bodies as JSON, nothing as ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def resource_identity(attrs: dict) -> tuple[str, str]:
    """(service, pod) of a resource: service.name; k8s.pod.name, else service.instance.id, else host.name."""
    service = attrs.get("service.name") or "unknown_service"
    pod = attrs.get("k8s.pod.name") or attrs.get("service.instance.id") or attrs.get("host.name") or ""
    return str(service), str(pod)
