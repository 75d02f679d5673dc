"""The read side of the DuckDB store: SQL over the telemetry tables.

Each read runs on its own cursor (``_reading``), which sees every acknowledged
batch, stored in DuckDB's tables or still only in the ingest log.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from rca.errors import NotFound


class TelemetryQueries:
    """Mixed into ``DuckStore``, whose ``_reading()`` gives a cursor that also sees logged batches."""

    def get_trace(self, trace_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        tid = trace_id.strip().lower()
        with self._reading(("spans", "logs")) as cur:
            spans = cur.execute("SELECT * FROM spans WHERE trace_id = ? ORDER BY start_ns, span_id", [tid]).df()
            if spans.empty:
                raise NotFound(f"trace {trace_id} not found", {"trace_id": trace_id})
            logs = cur.execute("SELECT * FROM logs WHERE trace_id = ? ORDER BY time_ns", [tid]).df()
        return spans, logs

    def list_traces(
        self, service: str | None = None, start_ns: int | None = None, end_ns: int | None = None, limit: int = 100
    ) -> pd.DataFrame:
        where, params = _window("start_ns", start_ns, end_ns)
        if service:
            where.append("trace_id IN (SELECT trace_id FROM spans WHERE service = ?" +
                         "".join(f" AND {w}" for w in where) + ")")
            params = params + [service] + params
        cond = " AND ".join(where) or "TRUE"
        sql = f"""
            SELECT trace_id,
                   arg_min(service, CASE WHEN parent_span_id = '' THEN 0 ELSE 1 END * 1e19 + start_ns) AS root_service,
                   arg_min(name, CASE WHEN parent_span_id = '' THEN 0 ELSE 1 END * 1e19 + start_ns) AS root_operation,
                   min(start_ns) AS start_ns,
                   max(end_ns) - min(start_ns) AS duration_ns,
                   count(*) AS n_spans,
                   bool_or(status_code = 2) AS error
            FROM spans WHERE {cond}
            GROUP BY trace_id ORDER BY start_ns DESC LIMIT ?"""
        with self._reading(("spans",)) as cur:
            return cur.execute(sql, params + [int(limit)]).df()

    def services(self) -> pd.DataFrame:
        with self._reading() as cur:
            return cur.execute(_SERVICES).df()

    def stats(self) -> dict[str, Any]:
        """Counts and time range of the whole store: one scan of each table (every figure of a table from
        the same pass), the service sets and ranges combined here."""
        with self._reading() as cur:
            n_spans, n_traces, span_services, f_spans, l_spans = cur.execute(
                "SELECT count(*), count(DISTINCT trace_id), list(DISTINCT service), min(start_ns), max(end_ns) "
                "FROM spans").fetchone()
            n_logs, log_services, f_logs, l_logs = cur.execute(
                "SELECT count(*), list(DISTINCT service), min(time_ns), max(time_ns) FROM logs").fetchone()
            n_points, metric_services, f_points, l_points = cur.execute(
                "SELECT count(*), list(DISTINCT service), min(time_ns), max(time_ns) FROM metrics").fetchone()
        firsts = [int(t) for t in (f_spans, f_logs, f_points) if t is not None]
        lasts = [int(t) for t in (l_spans, l_logs, l_points) if t is not None]
        return {
            "path": str(self.path),
            "n_spans": int(n_spans),
            "n_traces": int(n_traces),
            "n_logs": int(n_logs),
            "n_metric_points": int(n_points),
            "n_services": len({*(span_services or ()), *(log_services or ()), *(metric_services or ())}),
            "first_ns": min(firsts, default=None),
            "last_ns": max(lasts, default=None),
        }

    def time_range(self) -> tuple[int | None, int | None]:
        with self._reading() as cur:
            return _time_range(cur)

    def _between(self, table: str, tcol: str, start_ns, end_ns, services) -> pd.DataFrame:
        where, params = _window(tcol, start_ns, end_ns)
        if services:
            where.append(f"service IN ({', '.join('?' for _ in services)})")
            params += list(services)
        cond = " AND ".join(where) or "TRUE"
        with self._reading((table,)) as cur:
            return cur.execute(f"SELECT * FROM {table} WHERE {cond} ORDER BY {tcol}", params).df()

    def spans_between(self, start_ns, end_ns, services=None) -> pd.DataFrame:
        return self._between("spans", "start_ns", start_ns, end_ns, services)

    def logs_between(self, start_ns, end_ns, services=None) -> pd.DataFrame:
        return self._between("logs", "time_ns", start_ns, end_ns, services)

    def metrics_between(self, start_ns, end_ns, services=None) -> pd.DataFrame:
        return self._between("metrics", "time_ns", start_ns, end_ns, services)


_SERVICES = """
            WITH s AS (SELECT service, count(*) n, min(start_ns) f, max(end_ns) l FROM spans GROUP BY service),
                 g AS (SELECT service, count(*) n, min(time_ns) f, max(time_ns) l FROM logs GROUP BY service),
                 m AS (SELECT service, count(*) n, min(time_ns) f, max(time_ns) l FROM metrics GROUP BY service)
            SELECT coalesce(s.service, g.service, m.service) AS service,
                   coalesce(s.n, 0) AS n_spans, coalesce(g.n, 0) AS n_logs, coalesce(m.n, 0) AS n_metric_points,
                   least(s.f, g.f, m.f) AS first_ns, greatest(s.l, g.l, m.l) AS last_ns
            FROM s FULL OUTER JOIN g USING (service) FULL OUTER JOIN m USING (service)
            ORDER BY service"""

_TIME_RANGE = """SELECT min(f), max(l) FROM (
                 SELECT min(start_ns) f, max(end_ns) l FROM spans
                 UNION ALL SELECT min(time_ns), max(time_ns) FROM logs
                 UNION ALL SELECT min(time_ns), max(time_ns) FROM metrics)"""


def _time_range(cur) -> tuple[int | None, int | None]:
    first, last = cur.execute(_TIME_RANGE).fetchone()
    return (None if first is None else int(first), None if last is None else int(last))


def _window(col: str, start_ns: int | None, end_ns: int | None) -> tuple[list[str], list]:
    where, params = [], []
    if start_ns is not None:
        where.append(f"{col} >= ?")
        params.append(int(start_ns))
    if end_ns is not None:
        where.append(f"{col} < ?")
        params.append(int(end_ns))
    return where, params
