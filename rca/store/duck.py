"""The embedded default store: one DuckDB file.

One writer (a lock around every write; each write is one transaction, so a
returned call means committed and durable in DuckDB's WAL); readers use their
own cursor and see committed data.

Checkpoints (folding the WAL into the compressed table file) are the costly
part of a commit, so they are not done inline on every 16 MB of WAL as DuckDB
does by default: a writer checkpoints once writes have paused for
``IDLE_CHECKPOINT_S`` (or inline when the WAL passes ``WAL_CHECKPOINT_SIZE``
under sustained load), and on close. Durability is unchanged: a commit is in
the WAL, which DuckDB replays on open.
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from rca.errors import InvalidInput, NotFound, StoreError
from rca.schema import TABLES

WAL_CHECKPOINT_SIZE = "128MB"
IDLE_CHECKPOINT_S = 1.0
_INDEXES = [
    "CREATE INDEX IF NOT EXISTS spans_trace ON spans(trace_id)",
    "CREATE INDEX IF NOT EXISTS logs_trace ON logs(trace_id)",
]


class DuckStore:
    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise NotFound(f"no store at {self.path}", {"path": str(self.path)})
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:  # locked by another process, unreadable file
            raise StoreError(f"cannot open store {self.path}: {exc}", {"path": str(self.path)}) from exc
        self._lock = threading.RLock()
        self._columns: dict[str, list[str]] = {}
        self._closed = False
        self._dirty = threading.Event()  # set by every commit; the idle checkpointer waits on it
        self._checkpointer: threading.Thread | None = None
        if not read_only:
            self._con.execute(f"SET checkpoint_threshold = '{WAL_CHECKPOINT_SIZE}'")
            self._create_schema()

    # ------------------------------------------------------------------ schema
    def _create_schema(self) -> None:
        with self._lock:
            for table, cols in TABLES.items():
                body = ", ".join(f"{c} {t}" for c, t in cols.items())
                self._con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({body})")
            self._con.execute("CREATE TABLE IF NOT EXISTS state (key VARCHAR PRIMARY KEY, value VARCHAR)")
            for ddl in _INDEXES:
                self._con.execute(ddl)
            for table, cols in TABLES.items():  # the stored order, which positional inserts follow
                stored = [r[0] for r in self._con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND schema_name = 'main' "
                    "AND database_name = current_database() ORDER BY column_index", [table]).fetchall()]
                if sorted(stored) == sorted(cols):  # else (a table with extra columns): insert by name
                    self._columns[table] = stored

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        return self._con.cursor()

    # ------------------------------------------------------------------ writes
    def _arrow_rows(self, table: str, rows: Any) -> pa.Table | None:
        """``rows`` as an Arrow table with the stored table's columns in its order (None when empty)."""
        if table not in TABLES:
            raise InvalidInput(f"unknown table {table!r}")
        if rows is None:
            return None
        if isinstance(rows, pd.DataFrame):
            rows = pa.Table.from_pandas(rows, preserve_index=False)
        if rows.num_rows == 0:
            return None
        cols = self._columns.get(table) or list(TABLES[table])
        missing = [c for c in TABLES[table] if c not in rows.column_names]
        if missing:
            raise InvalidInput(f"{table}: missing columns {missing}")
        return rows.select(cols)

    def _insert(self, con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> None:
        if table in self._columns:
            con.from_arrow(rows).insert_into(table)
            return
        names = ", ".join(rows.column_names)
        con.register("_incoming", rows)
        try:
            con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _incoming")
        finally:
            con.unregister("_incoming")

    def append(self, table: str, rows: Any) -> int:
        return self.append_many({table: rows})[table]

    def append_many(self, batches: dict[str, Any]) -> dict[str, int]:
        tables = {table: self._arrow_rows(table, rows) for table, rows in batches.items()}
        out = {table: (0 if rows is None else rows.num_rows) for table, rows in tables.items()}
        todo = [(table, rows) for table, rows in tables.items() if rows is not None]
        if not todo:
            return out
        with self._lock:
            con = self._con
            if len(todo) == 1:  # one INSERT statement is its own (atomic) transaction
                self._insert(con, *todo[0])
            else:
                con.begin()
                try:
                    for table, rows in todo:
                        self._insert(con, table, rows)
                    con.commit()
                except BaseException:
                    con.rollback()
                    raise
            self._wake_checkpointer()
        return out

    # ------------------------------------------------------------------ checkpoints
    def _wake_checkpointer(self) -> None:
        self._dirty.set()
        if self._checkpointer is None:  # holds only a weak reference: an unclosed store can still be freed
            self._checkpointer = threading.Thread(target=_checkpoint_when_idle, args=(weakref.ref(self), self._dirty),
                                                  name="rca-checkpoint", daemon=True)
            self._checkpointer.start()

    def checkpoint(self) -> None:
        """Fold the WAL into the table file now (close does it too)."""
        with self._lock:
            if not self._closed:
                self._con.execute("CHECKPOINT")

    def execute(self, sql: str, params: list | tuple | None = None) -> None:
        with self._lock:
            self._con.execute(sql, params or [])

    def query(self, sql: str, params: list | tuple | None = None) -> pd.DataFrame:
        return self._cursor().execute(sql, params or []).df()

    # ------------------------------------------------------------------ state
    def get_state(self, key: str) -> str | None:
        row = self._cursor().execute("SELECT value FROM state WHERE key = ?", [key]).fetchone()
        return None if row is None else row[0]

    def put_state(self, key: str, value: str) -> None:
        with self._lock:
            self._con.execute(
                "INSERT INTO state VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [key, value]
            )

    # ------------------------------------------------------------------ reads
    def get_trace(self, trace_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        tid = trace_id.strip().lower()
        cur = self._cursor()
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
        return self._cursor().execute(sql, params + [int(limit)]).df()

    def services(self) -> pd.DataFrame:
        return self._cursor().execute(
            """
            WITH s AS (SELECT service, count(*) n, min(start_ns) f, max(end_ns) l FROM spans GROUP BY service),
                 g AS (SELECT service, count(*) n, min(time_ns) f, max(time_ns) l FROM logs GROUP BY service),
                 m AS (SELECT service, count(*) n, min(time_ns) f, max(time_ns) l FROM metrics GROUP BY service)
            SELECT coalesce(s.service, g.service, m.service) AS service,
                   coalesce(s.n, 0) AS n_spans, coalesce(g.n, 0) AS n_logs, coalesce(m.n, 0) AS n_metric_points,
                   least(s.f, g.f, m.f) AS first_ns, greatest(s.l, g.l, m.l) AS last_ns
            FROM s FULL OUTER JOIN g USING (service) FULL OUTER JOIN m USING (service)
            ORDER BY service"""
        ).df()

    def stats(self) -> dict[str, Any]:
        cur = self._cursor()
        n_spans, n_traces = cur.execute("SELECT count(*), count(DISTINCT trace_id) FROM spans").fetchone()
        (n_logs,) = cur.execute("SELECT count(*) FROM logs").fetchone()
        (n_points,) = cur.execute("SELECT count(*) FROM metrics").fetchone()
        (n_services,) = cur.execute(
            "SELECT count(*) FROM (SELECT service FROM spans UNION SELECT service FROM logs UNION SELECT service FROM metrics)"
        ).fetchone()
        first, last = self.time_range()
        return {
            "path": str(self.path),
            "n_spans": int(n_spans),
            "n_traces": int(n_traces),
            "n_logs": int(n_logs),
            "n_metric_points": int(n_points),
            "n_services": int(n_services),
            "first_ns": first,
            "last_ns": last,
        }

    def time_range(self) -> tuple[int | None, int | None]:
        row = self._cursor().execute(
            """SELECT min(f), max(l) FROM (
                 SELECT min(start_ns) f, max(end_ns) l FROM spans
                 UNION ALL SELECT min(time_ns), max(time_ns) FROM logs
                 UNION ALL SELECT min(time_ns), max(time_ns) FROM metrics)"""
        ).fetchone()
        return (None if row[0] is None else int(row[0]), None if row[1] is None else int(row[1]))

    def _between(self, table: str, tcol: str, start_ns, end_ns, services) -> pd.DataFrame:
        where, params = _window(tcol, start_ns, end_ns)
        if services:
            where.append(f"service IN ({', '.join('?' for _ in services)})")
            params += list(services)
        cond = " AND ".join(where) or "TRUE"
        return self._cursor().execute(f"SELECT * FROM {table} WHERE {cond} ORDER BY {tcol}", params).df()

    def spans_between(self, start_ns, end_ns, services=None) -> pd.DataFrame:
        return self._between("spans", "start_ns", start_ns, end_ns, services)

    def logs_between(self, start_ns, end_ns, services=None) -> pd.DataFrame:
        return self._between("logs", "time_ns", start_ns, end_ns, services)

    def metrics_between(self, start_ns, end_ns, services=None) -> pd.DataFrame:
        return self._between("metrics", "time_ns", start_ns, end_ns, services)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._dirty.set()
            self._con.close()
        if self._checkpointer is not None and self._checkpointer is not threading.current_thread():
            self._checkpointer.join()

    def __enter__(self) -> "DuckStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _checkpoint_when_idle(store_ref: "weakref.ref[DuckStore]", dirty: threading.Event) -> None:
    """The idle checkpointer: after each write, once no other write came for IDLE_CHECKPOINT_S, checkpoint."""
    while True:
        woke = dirty.wait(30)
        store = store_ref()
        if store is None or store._closed:
            return
        del store
        if not woke:
            continue
        dirty.clear()
        if dirty.wait(IDLE_CHECKPOINT_S):  # still writing: wait for a pause
            continue
        store = store_ref()
        if store is None:
            return
        try:
            store.checkpoint()
        except duckdb.TransactionException:  # another transaction is open: retry after the next pause
            dirty.set()
        del store


def _window(col: str, start_ns: int | None, end_ns: int | None) -> tuple[list[str], list]:
    where, params = [], []
    if start_ns is not None:
        where.append(f"{col} >= ?")
        params.append(int(start_ns))
    if end_ns is not None:
        where.append(f"{col} < ?")
        params.append(int(end_ns))
    return where, params
