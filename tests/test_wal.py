"""The store's ingest log: acknowledged batches are durable, replayed exactly once, visible to the next read."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from rca.errors import InvalidInput
from rca.ingest.batch import Batch
from rca.store.duck import DuckStore
from rca.store.wal import SUFFIX, WriteAheadLog, read_segment


def _spans(first: int, n: int, service: str = "api") -> pa.Table:
    ids = range(first, first + n)
    return Batch.table_from_columns("spans", {
        "trace_id": [f"{i // 10:032x}" for i in ids], "span_id": [f"{i:016x}" for i in ids],
        "parent_span_id": [""] * n, "service": [service] * n, "pod": ["p-0"] * n, "name": [f"op{i % 7}" for i in ids],
        "kind": [2] * n, "start_ns": [10**18 + i for i in ids], "end_ns": [10**18 + i + 50 for i in ids],
        "duration_ns": [50] * n, "status_code": [0] * n, "status_message": [""] * n,
        "attributes": ['{"i":%d}' % i for i in ids], "events": ["[]"] * n, "resource": ['{"service.name":"api"}'] * n,
        "scope": ["t"] * n})


def _counts(store: DuckStore) -> tuple[int, int]:
    row = store.query("SELECT count(*) AS n, count(DISTINCT span_id) AS d FROM spans").iloc[0]
    return int(row["n"]), int(row["d"])


def _crash_after(path: Path, script: str) -> str:
    """Run ``script`` (with ``store`` open on ``path``) in a new process that ends with os._exit: no close, no drain."""
    code = ("import os, sys\nsys.path.insert(0, %r)\nfrom tests.test_wal import _spans\n"
            "from rca.store.duck import DuckStore\nstore = DuckStore(%r)\n%s\nsys.stdout.flush()\nos._exit(0)\n"
            % (str(Path(__file__).resolve().parents[1]), str(path), script))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_appended_batches_are_visible_to_the_next_read(tmp_path):
    with DuckStore(tmp_path / "rca.duckdb") as store:
        for k in range(5):
            assert store.append("spans", _spans(k * 100, 100)) == 100
            assert store.stats()["n_spans"] == (k + 1) * 100  # no wait for the background writer
        store.append("spans", _spans(500, 3))
        spans, _ = store.get_trace(f"{501 // 10:032x}")
        assert "00000000000001f5" in set(spans["span_id"]) and store.n_logged_rows == 0


def test_crash_replays_unapplied_batches_exactly_once(tmp_path):
    path = tmp_path / "rca.duckdb"
    out = _crash_after(path, """
for k in range(6):
    store.append("spans", _spans(k * 1000, 1000))
print(store.stats()["n_spans"])          # a read: the first 6000 rows are now stored in DuckDB...
for k in range(6, 10):
    store.append("spans", _spans(k * 1000, 1000))
print(store.n_logged_rows)               # ...the last 4000 only logged when the process dies
""")
    assert out.split() == ["6000", "4000"]
    segments = list((tmp_path / "rca.duckdb.ingest-log").glob(f"*{SUFFIX}"))
    assert segments and sum(len(read_segment(s)) for s in segments) == 10  # applied and unapplied records alike
    for _ in range(2):  # replayed once on the first open; nothing more on the next
        with DuckStore(path) as store:
            assert _counts(store) == (10_000, 10_000)
    assert not list((tmp_path / "rca.duckdb.ingest-log").glob(f"*{SUFFIX}"))  # all stored: segments deleted


def test_torn_last_record_is_dropped_and_the_log_goes_on(tmp_path):
    path = tmp_path / "rca.duckdb"
    _crash_after(path, "for k in range(3):\n    store.append('spans', _spans(k * 10, 10))")
    (segment,) = (tmp_path / "rca.duckdb.ingest-log").glob(f"*{SUFFIX}")
    # the last record cut short, as by a crash during its write (so never acknowledged)
    segment.write_bytes(segment.read_bytes()[:-7])
    assert len(read_segment(segment)) == 2
    with DuckStore(path) as store:
        assert _counts(store) == (20, 20)
        store.append("spans", _spans(1000, 5))
    _crash_after(path, "store.append('spans', _spans(2000, 5))")
    with DuckStore(path) as store:
        assert _counts(store) == (30, 30)


def test_garbled_record_ends_its_segment(tmp_path):
    path = tmp_path / "rca.duckdb"
    _crash_after(path, "for k in range(3):\n    store.append('spans', _spans(k * 10, 10))")
    (segment,) = (tmp_path / "rca.duckdb.ingest-log").glob(f"*{SUFFIX}")
    data = bytearray(segment.read_bytes())
    data[-100] ^= 0xFF  # a page of the last record never reached the disk intact: its CRC no longer matches
    segment.write_bytes(bytes(data))
    with DuckStore(path) as store:
        assert _counts(store) == (20, 20)


def test_read_only_open_after_a_crash_sees_acknowledged_data(tmp_path):
    path = tmp_path / "rca.duckdb"
    _crash_after(path, "store.append('spans', _spans(0, 50))\nstore.append('spans', _spans(50, 50))")
    with DuckStore(path, read_only=True) as store:
        assert store.stats()["n_spans"] == 100


def test_concurrent_appends_share_fdatasyncs(tmp_path):
    with DuckStore(tmp_path / "rca.duckdb") as store:
        n_threads, per_thread = 8, 25
        start = threading.Barrier(n_threads)
        errors: list[BaseException] = []

        def writer(t: int) -> None:
            start.wait()
            try:
                for k in range(per_thread):
                    store.append("spans", _spans((t * per_thread + k) * 20, 20))
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        n_appends = n_threads * per_thread
        assert store._log.n_syncs < n_appends  # waiting appends were synced by one fdatasync
        assert _counts(store) == (n_appends * 20, n_appends * 20)


def test_a_bad_batch_fails_alone(tmp_path):
    with DuckStore(tmp_path / "rca.duckdb") as store:
        bad = _spans(0, 10).set_column(7, "start_ns", pa.array(["not a time"] * 10))
        results: dict[int, object] = {}

        def writer(i: int) -> None:
            try:
                results[i] = store.append("spans", bad if i % 3 == 0 else _spans(i * 100, 10))
            except InvalidInput as exc:
                results[i] = exc

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(isinstance(results[i], InvalidInput) for i in range(0, 12, 3))
        assert all(results[i] == 10 for i in range(12) if i % 3)
        assert _counts(store) == (80, 80)
        with pytest.raises(InvalidInput, match="missing columns"):
            store.append("spans", _spans(0, 3).drop_columns(["name"]))


def test_large_appends_go_straight_to_duckdb(tmp_path):
    from rca.store.duck import DIRECT_ROWS

    with DuckStore(tmp_path / "rca.duckdb") as store:
        store.append("spans", _spans(0, DIRECT_ROWS))
        assert store.n_logged_rows == 0 and store._log.applied_seq == 0
        assert store.stats()["n_spans"] == DIRECT_ROWS


def test_log_recovery_drops_a_torn_first_record_and_goes_on(tmp_path):
    log = WriteAheadLog(tmp_path, applied_seq=0)
    assert log.recover() == []
    log.append({"spans": _spans(0, 2)})
    log.close()
    (segment,) = tmp_path.glob(f"*{SUFFIX}")
    segment.write_bytes(segment.read_bytes()[:10])  # only a piece of its first record
    log = WriteAheadLog(tmp_path, applied_seq=0)
    assert log.recover() == [] and not segment.exists()  # nothing in it to store: deleted
    log.append({"spans": _spans(5, 1)})
    log.close()
    log = WriteAheadLog(tmp_path, applied_seq=0)
    assert [(r.seq, r.n_rows) for r in log.recover()] == [(2, 1)]  # a fresh sequence number


def test_state_is_logged_in_order_with_batches(tmp_path):
    path = tmp_path / "rca.duckdb"
    out = _crash_after(path, """
store.put_state("templates", "v1")
store.append("spans", _spans(0, 10))
store.put_state("templates", "v2")
print(store.n_logged_rows, store.get_state("templates"), store.n_logged_rows)
store.put_state("templates", "v3")
""")
    assert out.split() == ["12", "v2", "0"]  # a read of state stores what is logged first
    with DuckStore(path) as store:
        assert store.get_state("templates") == "v3" and _counts(store) == (10, 10)
