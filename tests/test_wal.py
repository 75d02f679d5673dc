"""The store's ingest log: acknowledged batches are durable, replayed exactly once, visible to the next read
(while only logged and after being stored alike, never twice)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pytest

from rca.errors import InvalidInput, StoreError
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


def _logs(first: int, n: int) -> pa.Table:
    ids = range(first, first + n)
    return Batch.table_from_columns("logs", {
        "time_ns": [10**18 + i for i in ids], "observed_ns": [10**18 + i for i in ids],
        "trace_id": [f"{i // 10:032x}" for i in ids], "span_id": [f"{i:016x}" for i in ids],
        "service": ["api"] * n, "pod": ["p-0"] * n, "severity_number": [9] * n, "severity_text": ["INFO"] * n,
        "body": [f"line {i}" for i in ids], "attributes": ["{}"] * n, "resource": ['{"service.name":"api"}'] * n,
        "scope": ["t"] * n, "template_id": [1] * n})


def _requests(k: int) -> tuple[bytes, bytes]:
    """An OTLP/protobuf traces request (3 spans, one with a bad span id) and a metrics request (2 points)."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    traces = ExportTraceServiceRequest()
    rs = traces.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = f"svc{k}"
    scope = rs.scope_spans.add()
    for i, span_id in enumerate((b"\x01" * 8, b"\x02" * 8, b"\x03" * 7)):
        span = scope.spans.add(trace_id=bytes([k + 1]) * 16, span_id=span_id, name=f"op{i}",
                               start_time_unix_nano=10**18 + i, end_time_unix_nano=10**18 + 100 + i)
        span.attributes.add(key="i").value.int_value = i
    metrics = ExportMetricsServiceRequest()
    rm = metrics.resource_metrics.add()
    rm.resource.attributes.add(key="service.name").value.string_value = f"svc{k}"
    gauge = rm.scope_metrics.add().metrics.add(name="cpu").gauge
    for i in range(2):
        gauge.data_points.add(time_unix_nano=10**18 + i, as_double=0.5 + i)
    return traces.SerializeToString(), metrics.SerializeToString()


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


@pytest.fixture
def writer_waits(monkeypatch):
    """The background writer stores logged batches only when told (flush), so reads meet them still logged."""
    import rca.store.duck as duck

    monkeypatch.setattr(duck, "APPLY_IDLE_S", 3600.0)
    monkeypatch.setattr(duck, "APPLY_MAX_DELAY_S", 3600.0)


def test_appended_batches_are_visible_to_the_next_read(tmp_path, writer_waits):
    with DuckStore(tmp_path / "rca.duckdb") as store:
        for k in range(5):
            assert store.append("spans", _spans(k * 100, 100)) == 100
            assert store.stats()["n_spans"] == (k + 1) * 100
        store.append("spans", _spans(500, 7))
        assert store.n_logged_rows == 507  # every read above saw them in the log: none waited for DuckDB
        store.flush()
        assert store.n_logged_rows == 0
        store.append("spans", _spans(507, 3))
        store.append("logs", _logs(507, 3))
        spans, logs = store.get_trace(f"{50:032x}")
        assert list(spans["span_id"]) == [f"{i:016x}" for i in range(500, 510)]  # 7 stored, 3 logged
        assert list(logs["span_id"]) == [f"{i:016x}" for i in range(507, 510)]
        assert _counts(store) == (510, 510) and store.stats()["n_logs"] == 3
        assert store.list_traces(limit=1000)["n_spans"].sum() == 510
        assert len(store.spans_between(10**18 + 400, 10**18 + 600)) == 110
        assert set(store.services()["service"]) == {"api"} and store.n_logged_rows == 6
    with DuckStore(tmp_path / "rca.duckdb") as store:
        assert _counts(store) == (510, 510) and store.n_logged_rows == 0


def test_reads_during_applies_see_each_batch_once(tmp_path, writer_waits):
    """Readers race the writer storing logged batches: every read sees each acknowledged row exactly once."""
    with DuckStore(tmp_path / "rca.duckdb") as store:
        acked, done, bad = [0], threading.Event(), []

        def writer() -> None:
            for k in range(200):
                store.append("spans", _spans(k * 25, 25))
                acked[0] = (k + 1) * 25
                if k % 7 == 6:
                    store.flush()
            done.set()

        def reader() -> None:
            while not done.is_set():
                before = acked[0]
                n, distinct = _counts(store)
                if n != distinct or n < before:
                    bad.append((n, distinct, before))

        threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not bad
        assert _counts(store) == (5000, 5000)


def test_crash_replays_unapplied_batches_exactly_once(tmp_path):
    path = tmp_path / "rca.duckdb"
    out = _crash_after(path, """
import rca.store.duck as duck
duck.APPLY_IDLE_S = duck.APPLY_MAX_DELAY_S = 3600.0  # only flush() stores logged batches
for k in range(6):
    store.append("spans", _spans(k * 1000, 1000))
store.flush()                            # the first 6000 rows are now stored in DuckDB...
print(store.stats()["n_spans"])
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
print(store.get_state("templates"))      # the last value logged, whether or not the writer stored it yet
store.flush()
print(store.n_logged_rows, store.get_state("templates"))
store.put_state("templates", "v3")
""")
    assert out.split() == ["v2", "0", "v2"]
    with DuckStore(path) as store:
        assert store.get_state("templates") == "v3" and _counts(store) == (10, 10)


def test_requests_logged_as_received_are_decoded_again_after_a_crash(tmp_path):
    from rca.ingest.otlp_proto import decode_proto

    path = tmp_path / "rca.duckdb"
    out = _crash_after(path, """
import rca.store.duck as duck
duck.APPLY_IDLE_S = duck.APPLY_MAX_DELAY_S = 3600.0  # all still only logged when the process dies
from tests.test_wal import _requests
from rca.ingest.otlp_proto import decode_proto
for k in range(3):
    traces, metrics = _requests(k)
    store.append_many(decode_proto(traces, "traces").tables, {"spans": traces})
    store.append_many(decode_proto(metrics, "metrics").tables, {"metrics": metrics})
print(store.n_logged_rows)
""")
    assert out.split() == ["12"]
    (segment,) = (tmp_path / "rca.duckdb.ingest-log").glob(f"*{SUFFIX}")
    logged = segment.read_bytes()
    assert all(r in logged for k in range(3) for r in _requests(k))  # as received, not re-encoded
    with DuckStore(path) as store:
        spans = store.query("SELECT * FROM spans ORDER BY trace_id, span_id")
        metrics = store.query("SELECT * FROM metrics ORDER BY service, time_ns")
    want_spans = pa.concat_tables([decode_proto(_requests(k)[0], "traces").tables["spans"] for k in range(3)])
    want_metrics = pa.concat_tables([decode_proto(_requests(k)[1], "metrics").tables["metrics"] for k in range(3)])
    assert len(spans) == 6 and len(metrics) == 6  # the bad span rejected again, as when it was received
    assert spans.to_dict("list") == want_spans.to_pandas().sort_values(["trace_id", "span_id"]).to_dict("list")
    assert metrics.to_dict("list") == want_metrics.to_pandas().sort_values(["service", "time_ns"]).to_dict("list")


def test_requests_logged_by_another_decoder_version_are_not_guessed_at(tmp_path, monkeypatch):
    import rca.ingest.otlp_proto as otlp_proto

    path = tmp_path / "rca.duckdb"
    _crash_after(path, """
import rca.store.duck as duck
duck.APPLY_IDLE_S = duck.APPLY_MAX_DELAY_S = 3600.0
from tests.test_wal import _requests
from rca.ingest.otlp_proto import decode_proto
traces, _ = _requests(0)
store.append_many(decode_proto(traces, "traces").tables, {"spans": traces})
""")
    monkeypatch.setattr(otlp_proto, "DECODER_VERSION", otlp_proto.DECODER_VERSION + 1)  # as after an upgrade
    with pytest.raises(StoreError, match="decoder version 1, but this rca decodes version 2: start the rca version"):
        DuckStore(path)
    monkeypatch.undo()
    with DuckStore(path) as store:  # the version that logged them stores them
        assert _counts(store) == (2, 2)
