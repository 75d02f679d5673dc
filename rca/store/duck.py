"""The embedded default store: one DuckDB file, fed through a write-ahead log.

Small appends (an OTLP request's batch) and ``put_state`` are logged first
(``rca.store.wal``, fdatasync'd, concurrent appends sharing one fdatasync), so a
returned call is durable; a background writer then applies the logged batches
to DuckDB in large transactions (DuckDB stores 100k+ rows at a time for a third
of the per-row cost of small commits), each recording the last applied log
sequence number in the ``state`` table, in the same transaction, so a replay
after a crash stores every batch exactly once. Opening the store replays what a
crash left unapplied, and closing it applies everything. Large appends
(``rca ingest``) go straight to DuckDB.

Reads never wait for the writer: a read's cursor sees DuckDB's tables plus the
batches logged and not yet applied (kept in memory as Arrow tables), through
temporary views named like the tables. A read lists the logged batches, then takes
DuckDB's snapshot and keeps the batches that snapshot does not hold yet, so a
batch being applied meanwhile is seen exactly once and a read never waits for
an apply.

Checkpoints (folding DuckDB's own WAL into the table file) are not done
inline every 16 MB of WAL as DuckDB does by default: the background writer
checkpoints once writes have paused for ``IDLE_CHECKPOINT_S`` (or DuckDB
does inline past ``WAL_CHECKPOINT_SIZE``), and close does.

One writer (a lock around every write); readers use their own cursor.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from rca.errors import InvalidInput, NotFound, StoreError
from rca.ingest.batch import SCHEMAS
from rca.schema import TABLES
from rca.store.duck_queries import TelemetryQueries
from rca.store.wal import SUFFIX, WriteAheadLog

WAL_CHECKPOINT_SIZE = "128MB"
IDLE_CHECKPOINT_S = 1.0
APPLIED_KEY = "ingest_log.applied_seq"  # state key: the last log record stored in DuckDB
APPLY_ROWS = 262_144  # apply logged batches once this many rows wait (half the cap below: reads see logged
#                       rows, so a burst is acknowledged without an apply competing for the CPU)...
APPLY_IDLE_S = 0.2  # ...or once appends pause this long...
APPLY_MAX_DELAY_S = 1.0  # ...or once the oldest has waited this long
APPLY_MAX_ROWS = 262_144  # rows per apply transaction
APPLY_RETRY_S = 1.0  # after a failed apply (disk full, I/O error); the batches stay logged
DIRECT_ROWS = 65_536  # an append this large is one cheap transaction already: straight to DuckDB
MAX_PENDING_ROWS = 1 << 19  # appends wait while this many logged rows (~250 MB) are not yet applied
TABLE_NAMES = tuple(TABLES)  # the telemetry tables, which reads see with their logged rows
_INDEXES = [
    "CREATE INDEX IF NOT EXISTS spans_trace ON spans(trace_id)",
    "CREATE INDEX IF NOT EXISTS logs_trace ON logs(trace_id)",
]


class DuckStore(TelemetryQueries):
    def __init__(self, path: str | Path, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self.wal_dir = self.path.with_name(self.path.name + ".ingest-log")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif not self.path.exists():
            raise NotFound(f"no store at {self.path}", {"path": str(self.path)})
        elif any(self.wal_dir.glob(f"*{SUFFIX}")):  # a server stopped without closing: apply its log first
            _recover(self.path)
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:  # locked by another process, unreadable file
            raise StoreError(f"cannot open store {self.path}: {exc}", {"path": str(self.path)}) from exc
        self._lock = threading.RLock()
        self._columns: dict[str, list[str]] = {}
        self._schemas = {table: SCHEMAS[table] for table in TABLES}
        self._closed = False
        self._log: WriteAheadLog | None = None
        self._wake = threading.Event()  # wakes the background writer
        self._writer: threading.Thread | None = None
        self._writer_until = float("inf")  # when the background writer next wakes by itself
        self._last_append = 0.0
        self._last_commit: float | None = None  # a commit not yet checkpointed
        self._db = self._con.execute("SELECT current_database()").fetchone()[0]
        if not read_only:
            self._con.execute(f"SET checkpoint_threshold = '{WAL_CHECKPOINT_SIZE}'")
            self._create_schema()
            self._open_log()

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
        for table in TABLES:  # what appends are checked and cast to
            cols = self._columns.get(table, TABLES[table])
            self._schemas[table] = pa.schema([SCHEMAS[table].field(c) for c in cols])

    def _open_log(self) -> None:
        """Open the ingest log and store what a crash left in it."""
        applied = self.get_state(APPLIED_KEY)
        try:
            self._log = WriteAheadLog(self.wal_dir, int(applied or 0), MAX_PENDING_ROWS)
            recovered = self._log.recover()
            for record in recovered:  # (a table logged as its OTLP request comes back in the decoder's order)
                record.tables = {t: rows if t == "state" else self._arrow_rows(t, rows)
                                 for t, rows in record.tables.items()}
        except (OSError, ValueError, KeyError, pa.ArrowInvalid, InvalidInput) as exc:
            self._con.close()
            raise StoreError(f"cannot read the ingest log {self.wal_dir}: {exc}", {"path": str(self.wal_dir)}) from exc
        if recovered:
            self.flush()

    @contextmanager
    def _reading(self, tables: tuple[str, ...] = TABLE_NAMES) -> Iterator[duckdb.DuckDBPyConnection]:
        """A reader's cursor that sees every acknowledged batch of ``tables``: DuckDB's tables, plus the
        batches still only logged as temporary views of the same names (``spans`` = stored rows UNION ALL
        logged rows). Only the tables a read uses: a view costs its logged rows' scan."""
        cur = self._con.cursor()
        try:
            logged = self._snapshot(cur, tables) if tables else False
            yield cur
            if logged:
                cur.commit()  # (a read-only transaction; committed so that nextval() and the like persist)
        finally:
            cur.close()

    def _snapshot(self, cur: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> bool:
        """Fix ``cur``'s view: DuckDB's tables now, plus the logged batches they do not hold yet; False when
        nothing waits in the log. Lock-free: the batches are listed first, then the DuckDB snapshot says
        (its ``APPLIED_KEY``, stored with each apply) which of them it already holds; a batch leaves the
        log's memory only after its apply has committed, so none falls between the two."""
        log = self._log
        if log is None or not log.n_pending_rows:
            return False
        records = log.durable()
        if not records:
            return False
        cur.begin()
        found = cur.execute("SELECT value FROM state WHERE key = ?", [APPLIED_KEY]).fetchall()  # the snapshot
        applied = int(found[0][0]) if found else 0
        logged: dict[str, list[pa.Table]] = {}
        for record in records:
            if record.seq > applied:
                for table, rows in record.tables.items():
                    if table in tables:
                        logged.setdefault(table, []).append(rows)
        for table, parts in logged.items():
            cur.register(f"_logged_{table}", parts[0] if len(parts) == 1 else pa.concat_tables(parts))
            cur.execute(f'CREATE TEMP VIEW {table} AS SELECT * FROM "{self._db}".main.{table} '
                        f"UNION ALL BY NAME SELECT * FROM _logged_{table}")
        return True

    # ------------------------------------------------------------------ writes
    def _arrow_rows(self, table: str, rows: Any) -> pa.Table | None:
        """``rows`` as an Arrow table of the stored columns (their order and types); None when empty.
        Checked here, before anything is acknowledged: a logged batch must be storable later."""
        if table not in TABLES:
            raise InvalidInput(f"unknown table {table!r}")
        if rows is None:
            return None
        if isinstance(rows, pd.DataFrame):
            rows = pa.Table.from_pandas(rows, preserve_index=False)
        if rows.num_rows == 0:
            return None
        names = set(rows.column_names)
        missing = [c for c in TABLES[table] if c not in names]
        if missing:
            raise InvalidInput(f"{table}: missing columns {missing}")
        schema = self._schemas[table]
        rows = rows.select(schema.names)
        if not rows.schema.equals(schema):
            try:
                rows = rows.cast(schema)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
                raise InvalidInput(f"{table}: {exc}") from exc
        return rows

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

    def _insert_all(self, tables: list[tuple[str, pa.Table]], state: dict[str, str] | None = None) -> None:
        """(Lock held.) Insert ``tables`` (and set state keys) in one transaction."""
        con = self._con
        con.begin()
        try:
            for table, rows in tables:
                self._insert(con, table, rows)
            if state:
                con.executemany(_PUT_STATE, [[k, v] for k, v in state.items()])
            con.commit()
        except BaseException:
            con.rollback()
            raise
        self._committed()

    def append(self, table: str, rows: Any) -> int:
        return self.append_many({table: rows})[table]

    def append_many(self, batches: dict[str, Any], requests: dict[str, bytes] | None = None) -> dict[str, int]:
        """``requests``: for a table whose rows are exactly what ``decode_proto`` gives for an OTLP/protobuf
        request (its output unmodified), that request; the log keeps it instead of the rows (see
        ``rca.store.wal``)."""
        tables = {table: self._arrow_rows(table, rows) for table, rows in batches.items()}
        out = {table: (0 if rows is None else rows.num_rows) for table, rows in tables.items()}
        todo = {table: rows for table, rows in tables.items() if rows is not None}
        if not todo:
            return out
        if self._log is None or sum(out.values()) >= DIRECT_ROWS:
            with self._lock:
                self._insert_all(list(todo.items()))
            return out
        self._logged(self._log.append(todo, requests))
        return out

    def _logged(self, n_pending: int) -> None:
        """A batch was logged (durable from here on): make sure the background writer will store it."""
        now = self._last_append = time.monotonic()
        if self._writer_until > now + APPLY_IDLE_S or n_pending >= APPLY_ROWS:
            self._wake_writer()

    # ------------------------------------------------------------------ applying the log
    def _apply_logged(self, max_rows: int | None) -> bool:
        """Store the oldest logged batches (up to ``max_rows`` rows) in one transaction; False when none were due."""
        with self._lock:
            records = [] if self._closed else self._log.durable(max_rows)
            if not records:
                return False
            parts: dict[str, list[pa.Table]] = {}
            state = {}
            for record in records:
                for table, rows in record.tables.items():
                    if table == "state":  # put_state calls, in order: the last value of a key wins
                        state.update(zip(rows.column("key").to_pylist(), rows.column("value").to_pylist()))
                    else:
                        parts.setdefault(table, []).append(rows)
            merged = [(t, ps[0] if len(ps) == 1 else pa.concat_tables(ps).combine_chunks()) for t, ps in parts.items()]
            state[APPLIED_KEY] = str(records[-1].seq)
            self._insert_all(merged, state=state)
            self._log.applied(records[-1].seq)
        return True

    @property
    def n_logged_rows(self) -> int:
        """Rows acknowledged (logged) and not yet stored in DuckDB's tables (reads see them all the same)."""
        return 0 if self._log is None else self._log.n_pending_rows

    def flush(self) -> None:
        """Store every batch acknowledged so far in DuckDB's tables (writes through ``execute`` and close
        call this first; reads see logged batches without it)."""
        log = self._log
        if log is None or not log.n_pending_rows:
            return
        target = log.synced_seq
        try:
            while log.applied_seq < target and self._apply_logged(APPLY_MAX_ROWS):
                pass
        except duckdb.Error as exc:
            raise StoreError(f"cannot store logged batches in {self.path}: {exc}", {"path": str(self.path)}) from exc

    # ------------------------------------------------------------------ the background writer
    def _committed(self) -> None:
        self._last_commit = time.monotonic()
        if self._writer_until > self._last_commit + IDLE_CHECKPOINT_S:
            self._wake_writer()

    def _wake_writer(self) -> None:
        self._wake.set()
        if self._writer is None and not self.read_only:  # a weak reference: an unclosed store can still be freed
            with self._lock:
                if self._writer is None:
                    self._writer = threading.Thread(target=_run_writer, args=(weakref.ref(self), self._wake),
                                                    name="rca-store-writer", daemon=True)
                    self._writer.start()

    def _writer_step(self) -> float | None:
        """One turn of the background writer: apply logged batches when due, checkpoint when idle.
        Returns how long to sleep (None: the store is closed)."""
        if self._closed:
            return None
        now = time.monotonic()
        log = self._log
        if log is not None and log.n_pending_rows:
            oldest = log.oldest_logged_at() or now
            wait = min(APPLY_IDLE_S - (now - self._last_append), APPLY_MAX_DELAY_S - (now - oldest))
            if log.n_pending_rows < APPLY_ROWS and wait > 0:
                return wait
            try:
                applied = self._apply_logged(APPLY_MAX_ROWS)
            except Exception:  # noqa: BLE001 - disk full, I/O error: the batches stay logged, reads report it
                return APPLY_RETRY_S
            return 0.0 if applied else 0.002  # (none applied: the next is still being synced)
        if self._last_commit is not None:
            idle = now - max(self._last_commit, self._last_append)
            if idle < IDLE_CHECKPOINT_S:
                return IDLE_CHECKPOINT_S - idle
            try:
                self.checkpoint()
            except duckdb.TransactionException:  # another transaction is open: after the next pause
                return IDLE_CHECKPOINT_S
        return 30.0

    def checkpoint(self) -> None:
        """Fold DuckDB's WAL into the table file now (close does it too)."""
        with self._lock:
            if not self._closed:
                self._last_commit = None
                self._con.execute("CHECKPOINT")

    # ------------------------------------------------------------------ raw SQL and state
    def execute(self, sql: str, params: list | tuple | None = None) -> None:
        self.flush()
        with self._lock:
            self._con.execute(sql, params or [])
            self._committed()

    def query(self, sql: str, params: list | tuple | None = None) -> pd.DataFrame:
        with self._reading(tuple(t for t in TABLE_NAMES if re.search(rf"\b{t}\b", sql, re.IGNORECASE))) as cur:
            return cur.execute(sql, params or []).df()

    def get_state(self, key: str) -> str | None:
        if self._log is not None:
            found, value = self._log.logged_state(key)
            if found:
                return value
        with self._reading(()) as cur:  # (logged state is never in a view: it was looked up above)
            row = cur.execute("SELECT value FROM state WHERE key = ?", [key]).fetchone()
        return None if row is None else row[0]

    def put_state(self, key: str, value: str) -> None:
        """Durable on return; logged like a batch (so it never waits for a large apply) and stored in order
        with them: state put before a batch is in DuckDB no later than the batch."""
        if self._log is None:
            with self._lock:
                self._con.execute(_PUT_STATE, [key, value])
                self._committed()
            return
        self._logged(self._log.append({"state": pa.table({"key": [str(key)], "value": [str(value)]})}))

    def close(self) -> None:
        """Store everything logged, close the log and the database (DuckDB checkpoints on close)."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            with self._lock:
                self._closed = True
                if self._log is not None:
                    self._log.close()  # its segments are deleted only if everything was stored
                self._con.close()
            self._wake.set()
            if self._writer is not None and self._writer is not threading.current_thread():
                self._writer.join()

    def __enter__(self) -> "DuckStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_PUT_STATE = "INSERT INTO state VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"


def _run_writer(store_ref: "weakref.ref[DuckStore]", wake: threading.Event) -> None:
    """The background writer's loop; it holds the store only while working, so an unclosed store can be freed."""
    wait_s = 0.0
    while True:
        if wait_s > 0:
            wake.wait(wait_s)
        wake.clear()
        store = store_ref()
        if store is None:
            return
        try:
            store._writer_until = float("inf")  # an append meanwhile wakes it again
            wait_s = store._writer_step()
            if wait_s is not None:
                store._writer_until = time.monotonic() + wait_s
        finally:
            del store
        if wait_s is None:
            return


def _recover(path: Path) -> None:
    """Open the store read-write once, so that batches a stopped server logged but had not stored get stored."""
    DuckStore(path).close()
