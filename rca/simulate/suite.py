"""A labelled suite: baseline traffic, then N fault cases, each a window around one injection.

Timeline: ``baseline_s`` of normal traffic, then per case 60 s before the injection, the fault
(``fault_s``), and ``gap_s`` of recovery before the next case's window. A case's ``window`` is
[inject - 60 s, inject + fault_s] (like the Nezha cases: ~1 min before, ~2 min after).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from random import Random

from rca.errors import InvalidInput
from rca.simulate.engine import Engine, pod_names
from rca.simulate.faults import FAULT_KINDS, Fault, fixed_fault, plan_faults
from rca.simulate.metrics import scrape_points
from rca.simulate.topology import Topology, load_topology

DEFAULT_START = "2024-05-01T08:00:00Z"
PRE_S = 60
_S = 1_000_000_000


def _rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns // _S, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_start(value: str) -> int:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise InvalidInput(f"start time {value!r} is not RFC 3339 (e.g. {DEFAULT_START})") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * _S


def case_dicts(topology: Topology, faults: list[Fault], seed: int) -> list[dict]:
    return [{"case_id": f"{topology.name}-s{seed}-{i + 1:02d}", "system": topology.name,
             "inject_time": _rfc3339(f.start_ns), "fault_type": f.kind,
             "root_cause": {"service": f.service, "pod": f.pod},
             "window": {"start": _rfc3339(f.start_ns - PRE_S * _S), "end": _rfc3339(f.end_ns)}}
            for i, f in enumerate(faults)]


@dataclass
class SuiteResult:
    cases: list[dict]
    faults: list[Fault]
    counts: dict[str, dict[str, int]]
    seconds: float
    out_dir: Path | None

    def to_dict(self) -> dict:
        return {"cases": self.cases, "faults": [f.to_dict() for f in self.faults], "counts": self.counts,
                "seconds": round(self.seconds, 3), "out_dir": str(self.out_dir) if self.out_dir else None}


def simulate_suite(topology: str | Path | Topology, n_faults: int, seed: int, out_dir: str | Path | None,
                   **options) -> list[dict]:
    """Simulate a labelled suite (see :func:`run_suite`); returns the case dicts of ``cases.jsonl``."""
    return run_suite(topology, n_faults, seed, out_dir, **options).cases


def run_suite(topology: str | Path | Topology, n_faults: int, seed: int, out_dir: str | Path | None,
              rate: float = 10.0, baseline_s: int = 600, fault_s: int = 120, gap_s: int = 120,
              start: str = DEFAULT_START, kinds: list[str] | None = None, endpoint: str | None = None,
              via_sdk: bool = False, compresslevel: int = 6, faults: list[dict] | None = None) -> SuiteResult:
    """Simulate ``topology`` with ``n_faults`` injected faults.

    ``faults`` (optional) fixes the cases instead of the planner: a list of
    ``{"kind", "service"[, "pod", "intensity"]}``, one per case (``n_faults`` is then its length).

    Files (``traces/logs/metrics.jsonl.gz``, ``cases.jsonl``, ``README.md``) go to ``out_dir``;
    with ``endpoint`` the telemetry is sent over OTLP/HTTP instead (``cases.jsonl`` is still
    written when ``out_dir`` is given). ``via_sdk`` writes the files through the OpenTelemetry SDK
    (slower; the default is a direct encoder that writes the same records).
    """
    topo = topology if isinstance(topology, Topology) else load_topology(topology)
    if n_faults < 0:
        raise InvalidInput("the number of faults must be >= 0")
    if not 0.1 <= rate <= 5000:
        raise InvalidInput(f"rate {rate} requests/s is out of range [0.1, 5000]")
    if baseline_s < 0 or fault_s < 10 or gap_s < 0:
        raise InvalidInput("baseline and gap must be >= 0 s, the fault duration >= 10 s")
    if out_dir is None and endpoint is None:
        raise InvalidInput("give an output directory or an endpoint")
    for k in kinds or ():
        if k not in FAULT_KINDS:
            raise InvalidInput(f"unknown fault kind {k!r} (known: {', '.join(FAULT_KINDS)})")
    if faults is not None:
        n_faults = len(faults)
    t0 = parse_start(start)
    slot = PRE_S + fault_s + gap_s
    inject = [t0 + (baseline_s + PRE_S + i * slot) * _S for i in range(n_faults)]
    end = t0 + (baseline_s + n_faults * slot) * _S if n_faults else t0 + max(baseline_s, 60) * _S
    names = pod_names(topo, seed)
    if faults is not None:
        planned = [fixed_fault(topo, names, spec, inject[i], fault_s * _S) for i, spec in enumerate(faults)]
    else:
        planned = plan_faults(topo, names, n_faults, Random(f"faults-{seed}"), inject, fault_s * _S,
                              kinds) if n_faults else []
    faults = planned
    cases = case_dicts(topo, faults, seed)
    engine = Engine(topo, seed, rate, t0, end, faults)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if endpoint is not None:
        from rca.simulate.sdk_sink import SdkSink

        sink = SdkSink(engine, endpoint=endpoint)
    elif via_sdk:
        from rca.simulate.sdk_sink import SdkSink

        sink = SdkSink(engine, out_dir=out, compresslevel=compresslevel)
    else:
        from rca.simulate.otlp_files import JsonFileSink

        sink = JsonFileSink(out, engine, compresslevel=compresslevel)
    began = time.perf_counter()
    try:
        engine.run(sink)
        sink.write_metrics(scrape_points(engine), engine)
        counts = sink.close()
    except BaseException:
        sink.abort()
        raise
    if out is not None:
        (out / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
        if endpoint is None:
            from rca.simulate.readme import write_readme

            write_readme(out, topo, engine, faults, cases, counts,
                         dict(seed=seed, rate=rate, baseline_s=baseline_s, fault_s=fault_s, gap_s=gap_s,
                              start=start, kinds=kinds, n_faults=n_faults))
    return SuiteResult(cases, faults, counts, time.perf_counter() - began, out)
