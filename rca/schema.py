"""Table layout shared by ingest (which builds columns) and every store backend.

Ids are lowercase hex strings; times are Unix nanoseconds (BIGINT);
attributes/resource/events are JSON text in VARCHAR columns (DuckDB's JSON type
only adds a validating parse on every insert; our decoders write valid JSON).
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
    "attributes": "VARCHAR",  # JSON text
    "events": "VARCHAR",  # JSON text
    "resource": "VARCHAR",  # JSON text
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
    "attributes": "VARCHAR",  # JSON text
    "resource": "VARCHAR",  # JSON text
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
    "attributes": "VARCHAR",  # JSON text
    "resource": "VARCHAR",  # JSON text
}

TABLES: dict[str, dict[str, str]] = {"spans": SPAN_COLUMNS, "logs": LOG_COLUMNS, "metrics": METRIC_COLUMNS}
