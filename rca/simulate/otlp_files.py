"""OTLP/JSON-lines files as the Collector's file exporter writes them, encoded directly.

One Export*ServiceRequest per line, lowerCamelCase keys, hex ids, 64-bit integers as strings,
enums as integers, default values left out, at most ``max_items`` items per line, items in time
order; gzip with mtime 0 so the same seed gives the same bytes. Files are written under a
temporary name and renamed when complete (nothing half-written).
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import rca

SCOPE_NAME = "rca.simulate"
FILES = {"traces": "traces.jsonl.gz", "logs": "logs.jsonl.gz", "metrics": "metrics.jsonl.gz"}
_KEYS = {"traces": ("resourceSpans", "scopeSpans", "spans"), "logs": ("resourceLogs", "scopeLogs", "logRecords"),
         "metrics": ("resourceMetrics", "scopeMetrics", "metrics")}


def resource_attributes(engine, pod) -> dict:
    return {"service.name": pod.service, "service.namespace": engine.topo.namespace,
            "service.version": pod.version, "k8s.pod.name": pod.name,
            "k8s.namespace.name": engine.topo.namespace}


def encode_value(v) -> str:
    if isinstance(v, bool):
        return '{"boolValue":true}' if v else '{"boolValue":false}'
    if isinstance(v, int):
        return f'{{"intValue":"{v}"}}'
    if isinstance(v, float):
        return f'{{"doubleValue":{json.dumps(v)}}}'
    return f'{{"stringValue":{json.dumps(v, ensure_ascii=False)}}}'


def encode_attributes(attrs) -> str:
    return ",".join(f'{{"key":{json.dumps(k)},"value":{encode_value(v)}}}' for k, v in attrs)


class _LineWriter:
    """Buffers (pod, item_json) and writes full lines of ``max_items`` items."""

    def __init__(self, path: Path, signal: str, resources: list[str], scope: str, max_items: int, level: int):
        self.path, self.tmp = path, path.with_name(path.name + ".part")
        self.fh = open(self.tmp, "wb")
        self.gz = gzip.GzipFile(filename="", mode="wb", fileobj=self.fh, mtime=0, compresslevel=level)
        self.keys = _KEYS[signal]
        self.resources, self.scope, self.max_items = resources, scope, max_items
        self.buf: list[tuple[int, str]] = []
        self.n_lines = self.n_items = 0

    def add(self, items: list[tuple[int, str]]) -> None:
        self.buf.extend(items)
        while len(self.buf) >= self.max_items:
            self.write_line(self.buf[: self.max_items])
            del self.buf[: self.max_items]

    def write_line(self, items: list[tuple[int, str]]) -> None:
        if not items:
            return
        groups: dict[int, list[str]] = {}
        for pod, js in items:
            groups.setdefault(pod, []).append(js)
        rk, sk, ik = self.keys
        parts = [f'{{"resource":{self.resources[pod]},"{sk}":[{{"scope":{self.scope},"{ik}":[{",".join(js)}]}}]}}'
                 for pod, js in groups.items()]
        self.gz.write(f'{{"{rk}":[{",".join(parts)}]}}\n'.encode())
        self.n_lines += 1
        self.n_items += len(items)

    def close(self) -> None:
        self.write_line(self.buf)
        self.buf = []
        self.gz.close()
        self.fh.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.gz.close()
        self.fh.close()
        self.tmp.unlink(missing_ok=True)


class JsonFileSink:
    """Writes ``traces.jsonl.gz``, ``logs.jsonl.gz`` and ``metrics.jsonl.gz`` into ``out_dir``."""

    def __init__(self, out_dir: Path, engine, max_items: int = 2000, compresslevel: int = 6):
        out_dir.mkdir(parents=True, exist_ok=True)
        res = [f'{{"attributes":[{encode_attributes(resource_attributes(engine, p).items())}]}}' for p in engine.pods]
        scope = f'{{"name":"{SCOPE_NAME}","version":"{rca.__version__}"}}'
        self.pods = engine.pods
        self.writers = {sig: _LineWriter(out_dir / FILES[sig], sig, res, scope, max_items, compresslevel)
                        for sig in FILES}
        self._names: dict[str, str] = {}
        self._attrs: dict[tuple, str] = {}

    def _attributes(self, attrs: tuple) -> str:
        js = self._attrs.get(attrs)
        if js is None:
            js = encode_attributes(attrs)
            if len(self._attrs) < 100_000:
                self._attrs[attrs] = js
        return js

    def _name(self, s: str) -> str:
        js = self._names.get(s)
        if js is None:
            js = self._names[s] = json.dumps(s, ensure_ascii=False)
        return js

    def write_spans(self, rows: list[tuple], engine=None) -> None:
        out = []
        for start, end, tid, sid, pid, pod, name, kind, code, msg, attrs, events in rows:
            if pid:
                flags = 768 if kind == 2 else 256   # server spans have a remote parent (the caller's client span)
                head = f'{{"traceId":"{tid}","spanId":"{sid}","parentSpanId":"{pid}","flags":{flags},'
            else:
                head = f'{{"traceId":"{tid}","spanId":"{sid}","flags":256,'
            js = (f'{head}"name":{self._name(name)},"kind":{kind},"startTimeUnixNano":"{start}",'
                  f'"endTimeUnixNano":"{end}"')
            if attrs:
                js += f',"attributes":[{self._attributes(attrs)}]'
            if events:
                evs = ",".join(f'{{"timeUnixNano":"{t}","name":{self._name(n)},"attributes":[{encode_attributes(a)}]}}'
                               for t, n, a in events)
                js += f',"events":[{evs}]'
            if code:
                js += f',"status":{{"message":{json.dumps(msg, ensure_ascii=False)},"code":{code}}}}}'
            else:
                js += ',"status":{}}'
            out.append((pod, js))
        self.writers["traces"].add(out)

    def write_logs(self, rows: list[tuple], engine=None) -> None:
        out = []
        for t, pod, tid, sid, sev, text, body, attrs in rows:
            js = (f'{{"timeUnixNano":"{t}","observedTimeUnixNano":"{t}","severityNumber":{sev},'
                  f'"severityText":"{text}","body":{{"stringValue":{json.dumps(body, ensure_ascii=False)}}}')
            if attrs:
                js += f',"attributes":[{encode_attributes(attrs)}]'
            if tid:
                js += f',"flags":1,"traceId":"{tid}","spanId":"{sid}"}}'
            else:
                js += "}"
            out.append((pod, js))
        self.writers["logs"].add(out)

    def write_metrics(self, points: list[tuple], engine=None) -> None:
        """One line per scrape time (at most max_items points each)."""
        w = self.writers["metrics"]
        w.write_line(w.buf)
        w.buf = []
        last = None
        for t, pod, name, unit, value in points:
            bucket = (t - engine.start_ns) // engine.scrape_ns
            if last is not None and bucket != last:
                w.write_line(w.buf)
                w.buf = []
            last = bucket
            unit_js = f',"unit":"{unit}"' if unit else ""
            w.add([(pod, f'{{"name":"{name}"{unit_js},"gauge":{{"dataPoints":[{{"timeUnixNano":"{t}",'
                         f'"asDouble":{json.dumps(float(value))}}}]}}}}')])

    def close(self) -> dict[str, dict[str, int]]:
        counts = {}
        for sig, w in self.writers.items():
            w.close()
            counts[sig] = {"lines": w.n_lines, "items": w.n_items}
        return counts

    def abort(self) -> None:
        for w in self.writers.values():
            w.abort()
