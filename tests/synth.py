"""Small synthetic telemetry with a known answer, built in tests as OTLP/JSON requests.

frontend -> checkout -> payment -> db, plus frontend -> catalog. Baseline traffic with
heavy-tailed latencies, per-span log lines and a noisy caller (frontend logs background
warnings and errors all the time); then a fault at one service in a window.
"""

from __future__ import annotations

import random

BASE_NS = 1_700_000_000_000_000_000
S = 1_000_000_000
MS = 1_000_000

CALLS = {"frontend": ["checkout", "catalog"], "checkout": ["payment"], "payment": ["db"], "catalog": [], "db": []}
OPS = {"frontend": "GET /checkout", "checkout": "PlaceOrder", "payment": "Charge", "catalog": "ListProducts",
       "db": "SELECT orders"}
SELF_MS = {"frontend": 4, "checkout": 6, "payment": 8, "catalog": 5, "db": 2}


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _attr(k, v):
    return {"key": k, "value": {"stringValue": v}}


def build(fault: str | None = None, fault_service: str = "payment", minutes: int = 20, fault_minutes: int = 3,
          rate: float = 2.0, seed: int = 1):
    """Return (requests: {service: {"spans": [...], "logs": [...]}}, window (start_ns, end_ns), trace ids in window)."""
    rng = random.Random(seed)
    spans = {s: [] for s in CALLS}
    logs = {s: [] for s in CALLS}
    fault_start = BASE_NS + (minutes - fault_minutes) * 60 * S
    fault_end = BASE_NS + minutes * 60 * S
    window_traces = []

    def span(service, tid, parent, start, in_fault):
        sid = _hex(rng, 16)
        self_ms = SELF_MS[service] * rng.lognormvariate(0, 0.3)
        if in_fault and fault == "slow" and service == fault_service:
            self_ms *= 12
        t = start + int(self_ms * MS / 2)
        failed = False
        for callee in CALLS[service]:
            end_c, child_failed = span(callee, tid, sid, t, in_fault)
            failed |= child_failed
            t = end_c + int(0.5 * MS)
        end = t + int(self_ms * MS / 2)
        own_error = in_fault and fault == "error" and service == fault_service and rng.random() < 0.7
        status = {"code": 2} if (own_error or failed) else {}
        events = []
        if own_error:
            events = [{"timeUnixNano": str(end), "name": "exception", "attributes": [
                _attr("exception.type", "CardProcessorError"), _attr("exception.message", "card processor unavailable")]}]
        spans[service].append({"traceId": tid, "spanId": sid, "parentSpanId": parent, "name": OPS[service],
                               "startTimeUnixNano": str(start), "endTimeUnixNano": str(end), "status": status,
                               "events": events, "kind": 2})
        body = f"{OPS[service]} handled order={rng.randint(1000, 9999)} in {int((end - start) / MS)} ms"
        sev = 9
        if own_error:
            body, sev = f"ERROR charging card {rng.randint(1000, 9999)}: card processor unavailable", 17
        elif failed:
            body, sev = f"upstream call failed for order={rng.randint(1000, 9999)}", 17
        logs[service].append({"timeUnixNano": str(start + MS), "severityNumber": sev, "body": {"stringValue": body},
                              "traceId": tid, "spanId": sid})
        if service == "frontend" and rng.random() < 0.3:  # the noisy caller: background noise all the time
            logs[service].append({"timeUnixNano": str(start + 2 * MS), "severityNumber": rng.choice([13, 17]),
                                  "body": {"stringValue": f"cache refresh retry {rng.randint(1, 5)} for key "
                                                          f"user:{rng.randint(1, 99999)}"},
                                  "traceId": tid, "spanId": sid})
        return end, own_error or failed

    t = BASE_NS
    while t < fault_end:
        tid = _hex(rng, 32)
        in_fault = fault is not None and t >= fault_start
        span("frontend", tid, "", t, in_fault)
        if t >= fault_start:
            window_traces.append(tid)
        t += int(rng.expovariate(rate) * S)
    return {s: {"spans": spans[s], "logs": logs[s]} for s in CALLS}, (fault_start, fault_end), window_traces


def trace_request(per_service) -> dict:
    return {"resourceSpans": [{"resource": {"attributes": [_attr("service.name", s)]},
                               "scopeSpans": [{"scope": {"name": "synth"}, "spans": d["spans"]}]}
                              for s, d in per_service.items()]}


def logs_request(per_service) -> dict:
    return {"resourceLogs": [{"resource": {"attributes": [_attr("service.name", s)]},
                              "scopeLogs": [{"scope": {"name": "synth"}, "logRecords": d["logs"]}]}
                             for s, d in per_service.items()]}
