"""Table layout shared by ingest (which builds columns) and every store backend.

Ids are lowercase hex strings; times are Unix nanoseconds (BIGINT);
attributes/resource/events are JSON text.
"""

from __future__ import annotations

SPAN_COLUMNS: dict[str, str] = {
    "trace_id": "VARCHAR",
    "span_id": "VARCHAR",
    "parent_span_id": "VARCHAR",
    "service": "VARCHAR",
    "pod": "VARCHAR",
    "name": "VARCHAR",
    "kind": "TINYINT",
    "start_ns": "BIGINT",
    "end_ns": "BIGINT",
    "duration_ns": "BIGINT",
    "status_code": "TINYINT",
    "status_message": "VARCHAR",
    "attributes": "JSON",
    "events": "JSON",
    "resource": "JSON",
    "scope": "VARCHAR",
}

LOG_COLUMNS: dict[str, str] = {
    "time_ns": "BIGINT",
    "observed_ns": "BIGINT",
    "trace_id": "VARCHAR",
    "span_id": "VARCHAR",
    "service": "VARCHAR",
    "pod": "VARCHAR",
    "severity_number": "TINYINT",
    "severity_text": "VARCHAR",
    "body": "VARCHAR",
    "attributes": "JSON",
    "resource": "JSON",
    "scope": "VARCHAR",
    "template_id": "INTEGER",
}

METRIC_COLUMNS: dict[str, str] = {
    "time_ns": "BIGINT",
    "service": "VARCHAR",
    "pod": "VARCHAR",
    "name": "VARCHAR",
    "unit": "VARCHAR",
    "metric_type": "VARCHAR",
    "value": "DOUBLE",
    "attributes": "JSON",
    "resource": "JSON",
}

TABLES: dict[str, dict[str, str]] = {"spans": SPAN_COLUMNS, "logs": LOG_COLUMNS, "metrics": METRIC_COLUMNS}
