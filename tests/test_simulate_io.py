"""rca simulate: topology validation, the CLI, and emission through the OpenTelemetry SDK
(files and OTLP/HTTP to a loopback server)."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from rca.errors import InvalidInput
from rca.ingest.batch import Batch
from rca.ingest.otlp_json import decode_json
from rca.interfaces.cli.main import main
from rca.simulate import builtin_topologies, load_topology, run_suite
from rca.simulate.topology import BUILTIN_DIR, parse_topology

SMALL = dict(rate=4, baseline_s=20, fault_s=15, gap_s=5)


def _doc():
    return yaml.safe_load((BUILTIN_DIR / "shop.yaml").read_text())


def test_builtin_topologies_have_at_least_ten_services():
    assert set(builtin_topologies()) >= {"shop", "ridehail"}
    for name in ("shop", "ridehail"):
        assert len(load_topology(name).services) >= 10


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["services"]["frontend"]["operations"]["GET /"]["calls"].append("carts.GetCart"),
     r"services\.frontend\.operations\.GET /\.calls\[4\]: unknown service 'carts'"),
    (lambda d: d["services"]["cart"]["operations"]["GetCart"]["calls"].append("cart.Nope"),
     r"service 'cart' has no operation 'Nope'"),
    (lambda d: d["services"]["currency"]["operations"]["Convert"].update(calls=["frontend.GET /product/{id}"]),
     r"call cycle: .*currency\.Convert -> frontend\.GET /product/\{id\}"),
    (lambda d: d["services"]["ad"].update(kind="queue"), r"services\.ad\.kind: 'queue' is not one of"),
    (lambda d: d["services"]["ad"]["operations"]["GetAds"].update(latency_ms=5),
     r"services\.ad\.operations\.GetAds\.latency_ms: expected \[median_ms, sigma\]"),
    (lambda d: d.pop("requests"), r"missing key 'requests'"),
    (lambda d: d["requests"][0].update(weight=-1), r"requests\[0\]\.weight: -1 is out of range"),
    (lambda d: d["services"]["email"]["operations"]["SendOrderConfirmation"].update(logs=["LOUD hello"]),
     r"level 'LOUD' is not one of"),
])
def test_topology_errors_name_the_place(mutate, message):
    doc = _doc()
    mutate(doc)
    with pytest.raises(InvalidInput, match=message):
        parse_topology(doc, source="mine.yaml")


def test_a_user_topology_file_is_simulated(tmp_path):
    doc = _doc()
    doc["name"] = "myshop"
    path = tmp_path / "myshop.yaml"
    path.write_text(yaml.safe_dump(doc))
    cases = run_suite(str(path), 1, 3, tmp_path / "out", kinds=["latency"], **SMALL).cases
    assert cases[0]["system"] == "myshop" and cases[0]["fault_type"] == "latency"
    with pytest.raises(InvalidInput, match="no such built-in"):
        load_topology(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed")
    with pytest.raises(InvalidInput, match="not valid YAML"):
        load_topology(tmp_path / "bad.yaml")


def test_cli_writes_a_suite_and_rejects_bad_options(tmp_path, capsys):
    out = tmp_path / "suite"
    main(["simulate", "--topology", "ridehail", "--faults", "2", "--seed", "1", "--rate", "3",
          "--baseline", "20s", "--duration", "15s", "--gap", "5s", "--out", str(out)])
    assert "2 cases" in capsys.readouterr().out
    assert len((out / "cases.jsonl").read_text().splitlines()) == 2
    for argv, msg in ((["--duration", "2x"], "--duration: '2x' is not a duration"),
                      (["--kinds", "meteor"], "unknown fault kind 'meteor'"),
                      (["--topology", "nope"], "topology 'nope': no such built-in")):
        with pytest.raises(SystemExit) as exc:
            main(["simulate", "--out", str(tmp_path / "x"), *argv])
        assert exc.value.code == 2
        assert msg in capsys.readouterr().err
    assert not (tmp_path / "x" / "traces.jsonl.gz").exists()


def _rows(d):
    out = {}
    for signal, table in (("traces", "spans"), ("logs", "logs"), ("metrics", "metrics")):
        b = Batch()
        with gzip.open(d / f"{signal}.jsonl.gz", "rb") as fh:
            for line in fh:
                b.extend(decode_json(line))
        t = b.tables[table].to_pandas()
        out[table] = t.sort_values(list(t.columns)).reset_index(drop=True)
    return out


def test_the_sdk_path_writes_the_same_records_as_the_direct_encoder(tmp_path):
    a = run_suite("shop", 2, 9, tmp_path / "sdk", via_sdk=True, kinds=["exception", "dependency_down"], **SMALL)
    b = run_suite("shop", 2, 9, tmp_path / "direct", kinds=["exception", "dependency_down"], **SMALL)
    assert a.counts == b.counts
    ra, rb = _rows(tmp_path / "sdk"), _rows(tmp_path / "direct")
    for table in ra:
        assert ra[table].equals(rb[table]), table
    assert (ra["spans"].status_code == 2).any() and ra["spans"].events.str.contains("exception").any()


class _Collector(BaseHTTPRequestHandler):
    received: dict[str, list[bytes]] = {}

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.setdefault(self.path, []).append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_endpoint_mode_sends_otlp_protobuf_over_http(tmp_path):
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    _Collector.received = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        res = run_suite("shop", 1, 2, tmp_path, endpoint=f"http://127.0.0.1:{server.server_port}", **SMALL)
    finally:
        server.shutdown()
        server.server_close()
    n = {}
    for path, cls, field, inner, items in (("/v1/traces", ExportTraceServiceRequest, "resource_spans", "scope_spans",
                                             "spans"),
                                           ("/v1/logs", ExportLogsServiceRequest, "resource_logs", "scope_logs",
                                            "log_records"),
                                           ("/v1/metrics", ExportMetricsServiceRequest, "resource_metrics",
                                            "scope_metrics", "metrics")):
        total = 0
        for body in _Collector.received.get(path, []):
            req = cls.FromString(body)
            total += sum(len(getattr(s, items)) for r in getattr(req, field) for s in getattr(r, inner))
        n[path] = total
    assert n["/v1/traces"] > 500 and n["/v1/logs"] > 100 and n["/v1/metrics"] > 100
    assert (tmp_path / "cases.jsonl").read_text().count("\n") == 1
    assert res.cases[0]["root_cause"]["service"] in load_topology("shop").services
