"""The fault catalog: what can be injected, where it applies, and a planner for a suite.

Each fault is parameterized by target (service + pod), start, duration and intensity
(0..1). The effects themselves live in the engine, where they propagate through calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from random import Random

from rca.errors import InvalidInput
from rca.simulate.topology import Topology

FAULT_KINDS: dict[str, str] = {
    "latency": "added processing latency in the target's handlers (self time)",
    "exception": "a share of the target's requests throw; error logs and exception events at the origin",
    "cpu_contention": "a CPU hog in the target pod: CPU metric near the limit, slower handlers, lower capacity",
    "memory_leak": "memory grows towards the limit; GC pauses, then out-of-memory errors",
    "network_delay": "delay on the target pod's network: every call into or out of it is slower",
    "dependency_down": "the target pod crash-loops: callers get connection refused and retry",
    "db_lock": "lock contention in the database: write statements wait on row locks, some time out",
    "bad_deploy": "a new version with a bug: a new error log template appears at the target",
    "cache_failure": "the cache evicts everything: misses send reads to the database, SETs fail",
    "retry_storm": "a bad client config at the target: short timeouts, 4 immediate retries, load on its callees",
}


@dataclass(frozen=True)
class Fault:
    kind: str
    service: str
    pod: str
    start_ns: int
    end_ns: int
    intensity: float = 0.8
    params: dict = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "service": self.service, "pod": self.pod, "start_ns": self.start_ns,
                "end_ns": self.end_ns, "intensity": round(self.intensity, 3)}


def eligible_services(topology: Topology, kind: str) -> list[str]:
    """Services a fault kind can target in this topology (in topology order)."""
    if kind not in FAULT_KINDS:
        raise InvalidInput(f"unknown fault kind {kind!r} (known: {', '.join(FAULT_KINDS)})")
    svcs = topology.services
    entry = set(topology.entry_services)
    apps = [s for s in svcs if svcs[s].kind == "app"]
    if kind in ("latency", "exception", "bad_deploy", "memory_leak", "network_delay"):
        return apps
    if kind == "cpu_contention":
        return [s for s in svcs if svcs[s].kind in ("app", "database")]
    if kind == "dependency_down":
        return [s for s in svcs if s not in entry and topology.callers_of(s)]
    if kind == "db_lock":
        return [s for s in svcs if svcs[s].kind == "database" and any(o.locks for o in svcs[s].operations.values())]
    if kind == "cache_failure":
        return [s for s in svcs if svcs[s].kind == "cache" and topology.callers_of(s)]
    # retry_storm: an app service that calls other app services
    return [s for s in apps if any(svcs[c].kind == "app" for c in topology.callees_of(s))]


def plan_faults(topology: Topology, pods: dict[str, list[str]], n_faults: int, rng: Random,
                inject_ns: list[int], duration_ns: int, kinds: list[str] | None = None) -> list[Fault]:
    """``n_faults`` faults, kinds cycled (so each kind appears once n >= number of kinds),
    targets drawn among the services each kind applies to, one pod of the service."""
    kinds = list(kinds or FAULT_KINDS)
    usable = [k for k in kinds if eligible_services(topology, k)]
    if not usable:
        raise InvalidInput(f"none of the fault kinds {kinds} applies to topology {topology.name!r}")
    order = usable[:]
    rng.shuffle(order)
    faults = []
    last_target: dict[str, str] = {}
    for i in range(n_faults):
        kind = order[i % len(order)]
        choices = eligible_services(topology, kind)
        if len(choices) > 1 and last_target.get(kind) in choices:
            choices = [c for c in choices if c != last_target[kind]]
        service = rng.choice(choices)
        last_target[kind] = service
        pod = rng.choice(pods[service])
        faults.append(Fault(kind=kind, service=service, pod=pod, start_ns=inject_ns[i],
                            end_ns=inject_ns[i] + duration_ns, intensity=round(rng.uniform(0.6, 1.0), 3)))
    return faults


def fixed_fault(topology: Topology, pods: dict[str, list[str]], spec: dict, start_ns: int, duration_ns: int) -> Fault:
    """A fault from a ``{"kind", "service"[, "pod", "intensity"]}`` spec, checked against the topology."""
    if not isinstance(spec, dict) or "kind" not in spec or "service" not in spec:
        raise InvalidInput(f"a fault is a mapping with kind and service, got {spec!r}")
    kind, service = spec["kind"], spec["service"]
    allowed = eligible_services(topology, kind)
    if service not in allowed:
        raise InvalidInput(f"fault {kind!r} does not apply to service {service!r} (it applies to: "
                           f"{', '.join(allowed) or 'none'})")
    pod = spec.get("pod") or pods[service][0]
    if pod not in pods[service]:
        raise InvalidInput(f"service {service!r} has no pod {pod!r} (pods: {', '.join(pods[service])})")
    intensity = float(spec.get("intensity", 0.8))
    if not 0.0 < intensity <= 1.0:
        raise InvalidInput(f"fault intensity {intensity} is out of range (0, 1]")
    return Fault(kind=kind, service=service, pod=pod, start_ns=start_ns, end_ns=start_ns + duration_ns,
                 intensity=intensity)
