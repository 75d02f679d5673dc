"""The ingest write-ahead log: decoded batches on disk before they are acknowledged.

Storing a small batch in DuckDB costs a commit and ~3 us a row; one transaction
of 100k+ rows costs ~1 us a row. So a batch is first appended here (Arrow IPC,
fdatasync'd: durable) and the store applies many of them to DuckDB later, in
one large transaction that also records how far it got (``applied_seq``).

A record is one batch: a header (magic, sequence number, payload length,
CRC-32 of the payload) and a payload of (table code, length, bytes) parts: an
Arrow IPC stream of the rows, or, for spans and metric points decoded from an
OTLP/protobuf request, that request as received (a third of the bytes of the
decoded rows and nothing to encode; recovery decodes it again, which gives the
same rows). Records go to segment files named for their first sequence number;
appends that arrive while an fdatasync runs share the next one (group commit).
Records stay in memory until the store says they are applied; segments whose
records are all applied are deleted. On open, ``recover`` reads what a crash
left behind: a record cut short or garbled (never acknowledged, since its
fdatasync had not returned) ends its segment.
"""

from __future__ import annotations

import os
import struct
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from rca.errors import StoreError
from rca.ingest.batch import SIGNAL_OF_TABLE

MAGIC = b"RCAW"
_HEADER = struct.Struct("<4sQII")  # magic, seq, payload length, crc32(payload)
_PART = struct.Struct("<BI")  # part code, part length
TABLE_CODES = {"spans": 1, "logs": 2, "metrics": 3, "state": 4}  # state: (key, value) rows, the last one wins
_TABLE_OF_CODE = {v: k for k, v in TABLE_CODES.items()}
REQUEST_CODES = {"spans": 5, "metrics": 6}  # the rows as the OTLP/protobuf request they were decoded from
_TABLE_OF_REQUEST_CODE = {v: k for k, v in REQUEST_CODES.items()}
SEGMENT_BYTES = 64 << 20
SUFFIX = ".wal"


@dataclass
class Record:
    seq: int
    tables: dict[str, pa.Table]
    n_rows: int
    logged_at: float = field(default_factory=time.monotonic)


def encode_tables(tables: dict[str, pa.Table], requests: dict[str, bytes] | None = None) -> list:
    """A record payload as a list of buffers (with their part headers): each table as its OTLP request
    when ``requests`` has one for it (see ``DuckStore.append_many``), else as an Arrow IPC stream."""
    parts: list = []
    for name, table in tables.items():
        request = requests.get(name) if requests and name in REQUEST_CODES else None
        if request is not None:  # (the decoder's version first: its rows are what was acknowledged)
            parts += [_PART.pack(REQUEST_CODES[name], 1 + len(request)), _decoder_version(), request]
            continue
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        buf = sink.getvalue()
        parts += [_PART.pack(TABLE_CODES[name], buf.size), buf]
    return parts


def decode_tables(payload: memoryview) -> dict[str, pa.Table]:
    tables, pos = {}, 0
    while pos < len(payload):
        code, size = _PART.unpack_from(payload, pos)
        pos += _PART.size
        if code in _TABLE_OF_REQUEST_CODE:
            from rca.ingest.otlp_proto import decode_proto

            table = _TABLE_OF_REQUEST_CODE[code]
            if payload[pos:pos + 1] != _decoder_version():
                raise ValueError(f"{table} logged as a request for OTLP decoder version {payload[pos]}, but this rca "
                                 f"decodes version {_decoder_version()[0]}: start the rca version that logged them "
                                 "once, so that it stores them")
            tables[table] = decode_proto(bytes(payload[pos + 1:pos + size]), SIGNAL_OF_TABLE[table]).tables[table]
        else:
            tables[_TABLE_OF_CODE[code]] = pa.ipc.open_stream(pa.py_buffer(payload[pos:pos + size])).read_all()
        pos += size
    return tables


def _decoder_version() -> bytes:
    from rca.ingest.otlp_proto import DECODER_VERSION

    return bytes([DECODER_VERSION])


def read_segment(path: Path) -> list[tuple[int, memoryview]]:
    """(seq, payload) of each whole, intact record of a segment, up to the first torn or garbled one."""
    data = memoryview(path.read_bytes())
    out, pos = [], 0
    while pos + _HEADER.size <= len(data):
        magic, seq, size, crc = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + size
        if magic != MAGIC or end > len(data):
            break
        payload = data[pos + _HEADER.size:end]
        if zlib.crc32(payload) != crc:
            break
        out.append((seq, payload))
        pos = end
    return out


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WriteAheadLog:
    """Append-only log of decoded batches under ``directory``; ``applied_seq``: records up to it are stored."""

    def __init__(self, directory: str | Path, applied_seq: int = 0, max_pending_rows: int = 1 << 20):
        self.dir = Path(directory)
        if not self.dir.is_dir():
            self.dir.mkdir(parents=True)
            _fsync_dir(self.dir.parent)  # the new directory's entry is on disk before anything in it counts
        self.max_pending_rows = max_pending_rows
        self._lock = threading.Lock()  # the file, the sequence, the in-memory records
        self._room = threading.Condition(self._lock)  # appends wait here while too much is unapplied
        self._sync = threading.Condition()
        self._syncing = False
        self._broken: BaseException | None = None
        self._records: deque[Record] = deque()
        self.n_pending_rows = 0
        self.applied_seq = applied_seq
        self._next_seq = applied_seq + 1
        self._written = self._synced = applied_seq
        self._fd: int | None = None
        self._size = 0
        self._segments: list[tuple[Path, int]] = []  # closed segments with the last seq in each
        self._closed = False
        self.n_syncs = 0

    # ------------------------------------------------------------------ recovery
    def recover(self) -> list[Record]:
        """Read the segments left on disk; queue (and return) the records after ``applied_seq``."""
        last = self.applied_seq
        for path in sorted(self.dir.glob(f"*{SUFFIX}")):
            try:
                first = int(path.stem)
            except ValueError:
                continue
            self._next_seq = max(self._next_seq, first + 1)  # never reuse the name of a torn segment
            for seq, payload in read_segment(path):
                if seq <= last:
                    continue
                tables = decode_tables(payload)
                self._records.append(Record(seq, tables, sum(t.num_rows for t in tables.values())))
                last = seq
            self._segments.append((path, last))
        self.n_pending_rows = sum(r.n_rows for r in self._records)
        self._next_seq = max(self._next_seq, last + 1)
        self._written = self._synced = last
        self._discard_applied()
        return list(self._records)

    # ------------------------------------------------------------------ appends
    def append(self, tables: dict[str, pa.Table], requests: dict[str, bytes] | None = None) -> int:
        """Log ``tables`` as one record (those in ``requests`` as their OTLP request); returns (the rows
        logged and not yet applied) once it is on disk."""
        parts = encode_tables(tables, requests)
        size = sum(map(len, parts))  # (bytes and Arrow buffers)
        crc = 0
        for p in parts:
            crc = zlib.crc32(p, crc)
        n_rows = sum(t.num_rows for t in tables.values())
        with self._lock:
            while (self.n_pending_rows and self.n_pending_rows + n_rows > self.max_pending_rows
                   and self._broken is None and not self._closed):
                self._room.wait()
            self._check()
            seq = self._next_seq
            self._next_seq += 1
            self._write([_HEADER.pack(MAGIC, seq, size, crc), *parts], _HEADER.size + size, seq)
            record = Record(seq, tables, n_rows)
            self._records.append(record)
            self.n_pending_rows += n_rows
            n_pending = self.n_pending_rows
            self._written = seq
        self._sync_through(seq)
        return n_pending

    def _check(self) -> None:
        if self._closed:
            raise StoreError("the store is closed", {"path": str(self.dir)})
        if self._broken is not None:
            raise StoreError(f"the ingest log cannot be written ({self._broken}); restart to recover",
                             {"path": str(self.dir)})

    def _write(self, buffers: list, total: int, seq: int) -> None:
        """(Lock held.) Write one record (``buffers``, ``total`` bytes) at the end of the current segment, starting a new one when it is full."""
        try:
            if self._fd is None or self._size >= SEGMENT_BYTES:
                self._rotate(seq)
            start = self._size
            try:
                _write_all(self._fd, buffers, total)
                self._size += total
            except OSError:
                try:
                    os.ftruncate(self._fd, start)  # leave no partial record behind
                except OSError as exc:
                    self._broken = exc
                raise
        except OSError as exc:
            raise StoreError(f"cannot write the ingest log: {exc}", {"path": str(self.dir)}) from exc

    def _rotate(self, seq: int) -> None:
        if self._fd is not None:
            try:
                os.fdatasync(self._fd)  # a closed segment is whole on disk
            except OSError as exc:
                self._broken = exc
                raise
            os.close(self._fd)
            self._fd = None
            self._segments.append((self._path, self._written))
        path = self.dir / f"{seq:020d}{SUFFIX}"
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        self._path, self._size = path, 0
        _fsync_dir(self.dir)

    def _sync_through(self, seq: int) -> None:
        """Return once records up to ``seq`` are on disk; one caller syncs for all that are waiting."""
        with self._sync:
            while self._synced < seq:
                if self._broken is not None:
                    break
                if self._syncing:
                    self._sync.wait()
                    continue
                self._syncing = True
                self._sync.release()
                error = None
                try:
                    with self._lock:  # (a segment closed meanwhile was synced when it was closed)
                        target, fd = self._written, (None if self._fd is None else os.dup(self._fd))
                    if fd is not None:
                        try:
                            os.fdatasync(fd)
                        finally:
                            os.close(fd)
                except OSError as exc:
                    error = exc
                finally:
                    self._sync.acquire()
                    self._syncing = False
                    self._sync.notify_all()
                if error is not None:
                    with self._lock:
                        self._broken = error
                        self._room.notify_all()
                    break
                self._synced = max(self._synced, target)
                self.n_syncs += 1
        if self._synced < seq:
            self._check()

    # ------------------------------------------------------------------ applying
    def durable(self, max_rows: int | None = None) -> list[Record]:
        """Records on disk and not yet applied, oldest first (at least one, then up to ``max_rows`` rows)."""
        out, n = [], 0
        with self._lock:
            synced = self._synced
            for r in self._records:
                if r.seq > synced or (out and max_rows is not None and n + r.n_rows > max_rows):
                    break
                out.append(r)
                n += r.n_rows
        return out

    def logged_state(self, key: str) -> tuple[bool, str | None]:
        """(True, value) when a record on disk and not yet applied sets ``key`` (the last one wins), else
        (False, None)."""
        with self._lock:
            for r in reversed(self._records):
                rows = r.tables.get("state") if r.seq <= self._synced else None
                if rows is not None:
                    pairs = zip(rows.column("key").to_pylist(), rows.column("value").to_pylist())
                    for k, v in reversed(list(pairs)):
                        if k == key:
                            return True, v
        return False, None

    @property
    def synced_seq(self) -> int:
        return self._synced

    def oldest_logged_at(self) -> float | None:
        with self._lock:
            return self._records[0].logged_at if self._records else None

    def applied(self, seq: int) -> None:
        """Records up to ``seq`` are stored: drop them from memory and delete segments holding only those."""
        with self._lock:
            self.applied_seq = max(self.applied_seq, seq)
            while self._records and self._records[0].seq <= seq:
                self.n_pending_rows -= self._records.popleft().n_rows
            self._discard_applied()
            self._room.notify_all()

    def _discard_applied(self) -> None:
        keep = []
        for path, last in self._segments:
            if last <= self.applied_seq:
                path.unlink(missing_ok=True)
            else:
                keep.append((path, last))
        self._segments = keep

    def close(self) -> None:
        """Close the current segment; delete it too when every record is applied."""
        with self._lock:
            self._closed = True
            self._room.notify_all()
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                self._segments.append((self._path, self._written))
            self._discard_applied()


def _write_all(fd: int, buffers: list, total: int) -> None:
    done = os.writev(fd, buffers)
    if done < total:  # a short write: finish it from one joined copy
        rest = b"".join(bytes(b) for b in buffers)[done:]
        while rest:
            n = os.write(fd, rest)
            rest = rest[n:]
