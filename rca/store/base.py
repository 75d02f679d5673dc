"""The storage interface every backend implements (DuckDB now; ClickHouse later).

Ingest hands over pyarrow tables whose columns follow ``rca.schema``;
analysis reads pandas DataFrames back. Nothing outside ``rca.store`` speaks SQL
to the telemetry tables.
"""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd


class Store(Protocol):
    # -- writes: each call is one durable batch (on disk when it returns; visible to every later read);
    #    safe from several threads at once --
    def append(self, table: str, rows: Any) -> int:
        """Append a pyarrow.Table (or DataFrame) to ``spans``/``logs``/``metrics``; returns rows stored."""

    def append_many(self, batches: dict[str, Any], requests: dict[str, bytes] | None = None) -> dict[str, int]:
        """Append several tables as ONE batch (all or nothing; checked before anything is written).
        ``requests``: per table, the OTLP/protobuf request its rows were decoded from, if they are exactly
        that request's decoding (a store may keep the request instead of the rows)."""

    # -- reads --
    def get_trace(self, trace_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(spans, logs) of one trace; raises NotFound for an unknown id."""

    def list_traces(
        self, service: str | None = None, start_ns: int | None = None, end_ns: int | None = None, limit: int = 100
    ) -> pd.DataFrame:
        """trace_id, root_service, root_operation, start_ns, duration_ns, n_spans, error."""

    def services(self) -> pd.DataFrame:
        """service, n_spans, n_logs, n_metric_points, first_ns, last_ns."""

    def stats(self) -> dict[str, Any]: ...

    def spans_between(self, start_ns: int | None, end_ns: int | None, services: list[str] | None = None) -> pd.DataFrame: ...

    def logs_between(self, start_ns: int | None, end_ns: int | None, services: list[str] | None = None) -> pd.DataFrame: ...

    def metrics_between(self, start_ns: int | None, end_ns: int | None, services: list[str] | None = None) -> pd.DataFrame: ...

    def time_range(self) -> tuple[int | None, int | None]: ...

    # -- small keyed state (drain3 miner, trained-model metadata, ...) --
    def get_state(self, key: str) -> str | None: ...

    def put_state(self, key: str, value: str) -> None: ...

    # -- raw SQL for stage-owned side tables (kb incidents, explain results) --
    def execute(self, sql: str, params: list | tuple | None = None) -> None: ...

    def query(self, sql: str, params: list | tuple | None = None) -> pd.DataFrame:
        """Rows of ``sql``; every acknowledged telemetry row it names is seen. Keyed state: ``get_state``."""

    def close(self) -> None: ...
