"""Request-level simulation: traffic, fan-out, latency, queueing, timeouts, retries, faults.

Produces plain records (time-sorted per slice) that the sinks encode:

- span:  (start_ns, end_ns, trace_id, span_id, parent_id, pod, name, kind, status_code, status_message,
          attributes, events)  -- attributes: tuple of (key, value); events: tuple of (time_ns, name, attrs)
- log:   (time_ns, pod, trace_id, span_id, severity_number, severity_text, body, attributes)

Queueing: each pod has a capacity (4x its expected load unless the topology says otherwise);
self time is multiplied by 1/(1-rho), rho from the arrivals of the last 5 seconds, so extra load
(retries, cache misses) slows the pods that receive it.
"""

from __future__ import annotations

import math
from random import Random

from rca.simulate import effects
from rca.simulate.faults import Fault
from rca.simulate.logstyle import SEVERITY, Filler, Formatter, logger_name
from rca.simulate.topology import Call, Topology

SERVER, CLIENT = 2, 3
SLICE_NS = 30_000_000_000
_NS = 1_000_000  # ns per ms


class Pod:
    __slots__ = ("idx", "service", "svc", "name", "version", "capacity", "faults", "logger", "lang", "threads")

    def __init__(self, idx, svc, name, capacity, logger):
        self.idx, self.svc, self.service, self.name = idx, svc, svc.name, name
        self.version, self.capacity, self.faults, self.logger = svc.version, capacity, [], logger
        self.lang = svc.language
        self.threads = 200 if svc.kind == "app" else 4000


class Err:
    __slots__ = ("kind", "type", "message", "retryable")

    def __init__(self, kind: str, type_: str, message: str, retryable: bool = False):
        self.kind, self.type, self.message, self.retryable = kind, type_, message, retryable


def pod_names(topology: Topology, seed: int) -> dict[str, list[str]]:
    rng = Random(f"pods-{seed}")
    alnum = "bcdfghjklmnpqrstvwxz2456789"
    out = {}
    for s in topology.services.values():
        if s.kind == "app":
            rs = "".join(rng.choice(alnum) for _ in range(10))
            out[s.name] = [f"{s.name}-{rs}-{''.join(rng.choice(alnum) for _ in range(5))}" for _ in range(s.replicas)]
        else:
            out[s.name] = [f"{s.name}-{i}" for i in range(s.replicas)]
    return out


def expected_calls(topology: Topology) -> dict[tuple[str, str], float]:
    """Expected executions of each (service, operation) per entry request."""
    total_w = sum(r.weight for r in topology.requests)
    exp: dict[tuple[str, str], float] = {}

    def walk(svc: str, op: str, m: float) -> None:
        exp[(svc, op)] = exp.get((svc, op), 0.0) + m
        for c in topology.services[svc].operations[op].calls:
            cm = m * c.p * (c.n[0] + c.n[1]) / 2
            walk(c.service, c.operation, cm)
            if c.fallback:
                walk(*c.fallback, cm * (1 - topology.services[c.service].hit_ratio))

    for r in topology.requests:
        walk(r.service, r.operation, r.weight / total_w)
    return exp


class Engine:
    """Simulates traffic between ``start_ns`` and ``end_ns``; ``run(sink)`` feeds a sink slice by slice."""

    def __init__(self, topology: Topology, seed: int, rate: float, start_ns: int, end_ns: int,
                 faults: list[Fault] = (), scrape_s: int = 15):
        self.topo, self.seed, self.rate = topology, seed, rate
        self.start_ns, self.end_ns, self.scrape_ns = start_ns, end_ns, scrape_s * 1_000_000_000
        self.rng = Random(f"traffic-{seed}")
        self.idr = Random(f"ids-{seed}")
        self.filler = Filler(Random(f"logs-{seed}"))
        self.fmt = Formatter()
        self.names = pod_names(topology, seed)
        exp = expected_calls(topology)
        self.pods: list[Pod] = []
        self.pods_of: dict[str, list[Pod]] = {}
        self.by_name: dict[str, Pod] = {}
        for s in topology.services.values():
            load = rate * sum(v for (svc, _), v in exp.items() if svc == s.name) / s.replicas
            for name in self.names[s.name]:
                p = Pod(len(self.pods), s, name, max(4.0 * load, 2.0), logger_name(s.language, s.name))
                self.pods.append(p)
                self.pods_of.setdefault(s.name, []).append(p)
                self.by_name[name] = p
        self.faults = list(faults)
        for f in self.faults:
            self.by_name[f.pod].faults.append(f)
        n_sec = (end_ns - start_ns) // 1_000_000_000 + 120
        self.arrivals = [[0] * n_sec for _ in self.pods]
        self.calls_out = [[0] * n_sec for _ in self.pods]
        n_scr = (end_ns - start_ns) // self.scrape_ns + 2
        self.durations = [[[] for _ in range(n_scr)] for _ in self.pods]
        self.errors = [[0] * n_scr for _ in self.pods]
        self.typical_ms: dict[tuple[str, str], float] = {}
        self.spans: list[tuple] = []
        self.logs: list[tuple] = []
        self.fx = effects.Effects(self)

    # --- ids and small helpers -------------------------------------------------------------
    def new_span_id(self) -> str:
        return f"{self.idr.getrandbits(64) or 1:016x}"

    def new_trace_id(self) -> str:
        return f"{self.idr.getrandbits(128) or 1:032x}"

    def log(self, pod: Pod, t_ns: int, level: str, msg: str, tid: str = "", sid: str = "", attrs=()) -> None:
        body = self.fmt.format(pod.lang, t_ns, level, pod.logger, self.filler.fill(msg), tid, sid, pod.name,
                               self.rng.randint(1, pod.threads))
        self.logs.append((t_ns, pod.idx, tid, sid, SEVERITY[level], level, body, attrs))

    def pick(self, service: str) -> Pod:
        pods = self.pods_of[service]
        return pods[0] if len(pods) == 1 else pods[self.rng.randrange(len(pods))]

    def load_mult(self, pod: Pod, t_ns: int, cap_factor: float) -> float:
        sec = (t_ns - self.start_ns) // 1_000_000_000
        arr = self.arrivals[pod.idx]
        recent = sum(arr[max(0, sec - 5):sec]) / (min(sec, 5) or 1)
        rho = min(recent / (pod.capacity * cap_factor), 0.9)
        return 1.0 / (1.0 - rho)

    # --- traffic -------------------------------------------------------------------------
    def run(self, sink) -> None:
        rng = self.rng
        reqs = self.topo.requests
        weights = [r.weight for r in reqs]
        t = self.start_ns
        slice_end = self.start_ns + SLICE_NS
        self.fx.startup_logs()
        while t < self.end_ns:
            # traffic varies: a slow wave (+-15 %, 20 min period) around the configured rate
            phase = (t - self.start_ns) / 1.2e12 * 2 * math.pi
            lam = self.rate * (1 + 0.15 * math.sin(phase))
            t += int(rng.expovariate(lam) * 1e9) + 1
            while t >= slice_end or t >= self.end_ns:
                self._flush(sink, min(slice_end, self.end_ns))
                if slice_end >= self.end_ns:
                    break
                slice_end += SLICE_NS
            if t >= self.end_ns:
                break
            r = rng.choices(reqs, weights)[0]
            self.serve(self.pick(r.service), r.operation, self.new_trace_id(), "", t)
        self._flush(sink, None)

    def _flush(self, sink, upto: int | None) -> None:
        self.spans.sort()
        self.logs.sort()
        if upto is None:
            ready_s, self.spans = self.spans, []
            ready_l, self.logs = self.logs, []
        else:
            i = _cut(self.spans, upto)
            ready_s, self.spans = self.spans[:i], self.spans[i:]
            j = _cut(self.logs, upto)
            ready_l, self.logs = self.logs[:j], self.logs[j:]
        sink.write_spans(ready_s, self)
        sink.write_logs(ready_l, self)

    # --- one operation in one pod ----------------------------------------------------------
    def serve(self, pod: Pod, op_name: str, tid: str, parent: str, t0: int):
        """Run ``op_name`` on ``pod`` starting at t0; returns (end_ns, Err | None, cache_miss)."""
        rng = self.rng
        op = pod.svc.operations[op_name]
        sid = self.new_span_id()
        sec = (t0 - self.start_ns) // 1_000_000_000
        self.arrivals[pod.idx][sec] += 1
        active = [f for f in pod.faults if f.start_ns <= t0 < f.end_ns] if pod.faults else ()
        cap = 1.0
        for f in active:
            if f.kind == "cpu_contention":
                cap = 1.0 - 0.6 * f.intensity
        self_ms = math.exp(rng.gauss(_log(op.median_ms), op.sigma)) * self.load_mult(pod, t0, cap)
        err = None
        events = ()
        miss = pod.svc.kind == "cache" and not op.write and rng.random() > pod.svc.hit_ratio
        pending_logs: list[tuple[float, str, str]] = []   # (fraction of the span, level, message)
        for f in active:
            self_ms, err, miss = self.fx.at_origin(f, pod, op, t0, self_ms, err, miss, pending_logs)
        if err is None and rng.random() < pod.svc.background_error_p:
            err = self.fx.background(pod, pending_logs)
        pre = self_ms * rng.uniform(0.25, 0.6)
        t = t0 + int(pre * _NS)
        if err is None or err.kind == "late":
            for c in op.calls:
                if c.p < 1.0 and rng.random() >= c.p:
                    continue
                n = c.n[0] if c.n[0] == c.n[1] else rng.randint(c.n[0], c.n[1])
                ends = []
                for _ in range(n):
                    start = t + (int(rng.random() * 0.2 * _NS) if op.parallel else 0)
                    end, cerr = self.call(pod, sid, tid, c, start)
                    ends.append(end)
                    if not op.parallel:
                        t = end
                    if cerr is not None:
                        if c.optional:
                            pending_logs.append((1.0, "WARN", f"{c.service} unavailable, serving without it: "
                                                              f"{cerr.message}"))
                        elif err is None or err.kind == "late":
                            err = Err("upstream", cerr.type, f"{c.service}/{c.operation}: {cerr.message}")
                    if err is not None and err.kind != "late" and not op.parallel:
                        break
                if op.parallel:
                    t = max(ends + [t])
                if err is not None and err.kind != "late" and not op.parallel:
                    break
            if err is not None and err.kind == "late":
                err.kind = "exception"
        end = t + int((self_ms - pre) * _NS) + 1000
        dur = end - t0
        scr = (t0 - self.start_ns) // self.scrape_ns
        self.durations[pod.idx][scr].append(dur)
        key = (pod.service, op_name)
        tm = self.typical_ms.get(key)
        self.typical_ms[key] = dur / _NS if tm is None else tm + 0.01 * (dur / _NS - tm)
        code, msg = 0, ""
        attrs: tuple = ()
        if pod.svc.kind == "cache":
            attrs = (("db.system", "redis"), ("db.operation.name", op_name), ("cache.hit", not miss and not op.write))
        elif pod.svc.kind == "database":
            attrs = (("db.system", "postgresql"), ("db.operation.name", op_name.split(" ")[0]))
        if err is not None:
            self.errors[pod.idx][scr] += 1
            code, msg = 2, f"{err.type}: {err.message}"
            if err.kind in ("exception", "oom", "deploy", "lock"):
                events = ((end - 1000, "exception", (("exception.type", err.type),
                                                     ("exception.message", err.message))),)
            pending_logs.append((1.0, "ERROR", f"request failed: {err.type}: {err.message}"))
        for frac, level, text in op.logs and [(rng.random(), spec.level, spec.message) for spec in op.logs
                                              if spec.p >= 1.0 or rng.random() < spec.p] or ():
            pending_logs.append((frac * 0.9, level, text))
        for frac, level, text in pending_logs:
            self.log(pod, t0 + int(frac * dur), level, text, tid, sid)
        self.spans.append((t0, end, tid, sid, parent, pod.idx, op_name, SERVER, code, msg, attrs, events))
        return end, err, miss

    # --- one call from a pod to a service, with timeouts and retries ----------------------
    def call(self, pod: Pod, caller_sid: str, tid: str, c: Call, t: int):
        rng = self.rng
        timeout, retries, backoff = c.timeout_ms, c.retries, c.backoff_ms
        storm = self.fx.storm(pod, t)
        if storm is not None and self.topo.services[c.service].kind == "app":
            typical = self.typical_ms.get((c.service, c.operation), timeout)
            timeout = min(timeout, max(2.0, typical * (1.3 - 0.5 * storm.intensity)))
            retries, backoff = 4, 0.0
        callee_svc = self.topo.services[c.service]
        name = c.operation if callee_svc.kind != "app" else f"{c.service}/{c.operation}"
        err = None
        sec_base = self.start_ns
        for attempt in range(retries + 1):
            csid = self.new_span_id()
            callee = self.pick(c.service)
            self.calls_out[pod.idx][(t - sec_base) // 1_000_000_000] += 1
            net = math.exp(rng.gauss(-1.2, 0.4)) + self.fx.net_delay(pod, callee, t)
            attrs = [("peer.service", c.service), ("server.address", c.service)]
            if attempt:
                attrs.append(("http.request.resend_count", attempt))
            down = self.fx.is_down(callee, t)
            if down:
                cend = t + int((0.5 + rng.random()) * _NS)
                err = Err("refused", "connection_refused", self.fx.refused_text(pod, callee), retryable=True)
            else:
                s_end, s_err, miss = self.serve(callee, c.operation, tid, csid, t + int(net * _NS))
                resp = s_end + int((net * rng.uniform(0.8, 1.2)) * _NS)
                if resp - t > timeout * _NS:
                    cend = t + int(timeout * _NS)
                    err = Err("timeout", "timeout", f"deadline exceeded after {timeout:.0f}ms", retryable=True)
                elif s_err is not None:
                    cend = resp
                    err = Err("upstream", s_err.type, s_err.message)
                else:
                    cend, err = resp, None
                    if callee_svc.kind == "cache":
                        attrs.append(("cache.hit", not miss))
            code = 2 if err else 0
            if err:
                attrs.append(("error.type", err.type))
            self.spans.append((t, cend, tid, csid, caller_sid, pod.idx, name, CLIENT, code,
                               f"{err.type}: {err.message}" if err else "", tuple(attrs), ()))
            t = cend
            if err is None:
                if c.fallback and miss:
                    return self.call(pod, caller_sid, tid, Call(*c.fallback, timeout_ms=c.timeout_ms * 4,
                                                                retries=c.retries, backoff_ms=c.backoff_ms), t)
                return t, None
            if err.retryable and attempt < retries:
                self.log(pod, t, "WARN", f"call to {c.service}/{c.operation} failed: {err.message}; retrying "
                                         f"(attempt {attempt + 2}/{retries + 1})", tid, caller_sid)
                t += int(backoff * (2 ** attempt) * rng.uniform(0.8, 1.2) * _NS)
                continue
            break
        level = "WARN" if c.optional else "ERROR"
        self.log(pod, t, level, f"failed to call {c.service}/{c.operation}: {err.type}: {err.message}", tid, caller_sid)
        if callee_svc.kind == "cache" and c.fallback:   # a broken cache is not fatal: read through
            return self.call(pod, caller_sid, tid, Call(*c.fallback, timeout_ms=c.timeout_ms * 4,
                                                        retries=c.retries, backoff_ms=c.backoff_ms), t)
        if callee_svc.kind == "cache" and callee_svc.operations[c.operation].write:
            return t, None   # a failed cache write is logged, not fatal
        return t, err


_LOGS: dict[float, float] = {}


def _log(x: float) -> float:
    v = _LOGS.get(x)
    if v is None:
        v = _LOGS[x] = math.log(x)
    return v


def _cut(rows: list[tuple], upto: int) -> int:
    lo, hi = 0, len(rows)
    while lo < hi:
        mid = (lo + hi) // 2
        if rows[mid][0] < upto:
            lo = mid + 1
        else:
            hi = mid
    return lo


class MemorySink:
    """Keeps the records in memory (for the Python API and tests); same interface as the file sinks."""

    def __init__(self):
        self.spans: list[tuple] = []
        self.logs: list[tuple] = []
        self.metrics: list[tuple] = []

    def write_spans(self, rows, engine=None) -> None:
        self.spans.extend(rows)

    def write_logs(self, rows, engine=None) -> None:
        self.logs.extend(rows)

    def write_metrics(self, points, engine=None) -> None:
        self.metrics.extend(points)

    def close(self) -> dict:
        return {"traces": {"items": len(self.spans)}, "logs": {"items": len(self.logs)},
                "metrics": {"items": len(self.metrics)}}

    def abort(self) -> None:
        pass
