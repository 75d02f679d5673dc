"""Resource metrics per pod, one scrape every ``scrape_s`` seconds, as gauge points.

Names follow the Nezha conversion (``k8s.pod.*``) so real and simulated data read alike.
Point: (time_ns, pod_idx, name, unit, value).
"""

from __future__ import annotations

from random import Random

from rca.simulate.effects import Effects

METRICS = (
    ("k8s.pod.cpu.usage", "m"), ("k8s.pod.cpu.usage_rate", "%"), ("k8s.pod.memory.usage", "Mi"),
    ("k8s.pod.memory.usage_rate", "%"), ("k8s.pod.workload", "Ops"), ("k8s.pod.success_rate", "%"),
    ("k8s.pod.server.latency.p50", "s"), ("k8s.pod.server.latency.p90", "s"), ("k8s.pod.server.latency.p99", "s"),
    ("k8s.pod.restarts", ""),
)
_UNIT = dict(METRICS)


def _pct(sorted_vals: list[int], q: float) -> float:
    i = min(len(sorted_vals) - 1, int(q * len(sorted_vals)))
    return sorted_vals[i] / 1e9


def scrape_points(engine) -> list[tuple]:
    """All metric points of a finished run, sorted by time."""
    rng = Random(f"metrics-{engine.seed}")
    step = engine.scrape_ns
    step_s = step // 1_000_000_000
    n_scr = (engine.end_ns - engine.start_ns) // step
    points: list[tuple] = []
    for pod in engine.pods:
        svc = pod.svc
        idle = rng.uniform(2, 12)
        mem = svc.memory_mi
        restarts = 0
        for k in range(n_scr):
            t0 = engine.start_ns + k * step
            t = t0 + step + int(rng.uniform(0.0, 0.3) * 1e9)
            secs = range(k * step_s, (k + 1) * step_s)
            n_req = sum(engine.arrivals[pod.idx][s] for s in secs)
            n_out = sum(engine.calls_out[pod.idx][s] for s in secs)
            rps = n_req / step_s
            mem += rng.gauss(0, svc.memory_mi * 0.004) + (svc.memory_mi - mem) * 0.05
            cpu = idle + (n_req * svc.cpu_ms + n_out * 0.15 * svc.cpu_ms) / step_s * rng.uniform(0.85, 1.15)
            mem_now = mem
            down = False
            for f in pod.faults:
                if not f.start_ns <= t0 < f.end_ns:
                    continue
                if f.kind == "cpu_contention":
                    cpu += f.intensity * svc.cpu_limit_m * rng.uniform(0.8, 0.95)
                elif f.kind == "memory_leak":
                    mem_now = max(mem_now, Effects.memory_fraction(pod, f, t0) * svc.memory_limit_mi)
                elif f.kind == "cache_failure":
                    mem_now = svc.memory_limit_mi * rng.uniform(0.985, 0.999)
                    cpu *= 2.5
                elif f.kind == "dependency_down":
                    down = True
                    cpu, mem_now = rng.uniform(0.5, 3), svc.memory_mi * rng.uniform(0.1, 0.3)
                    restarts += 1 if k % 2 == 0 else 0
            cpu = min(cpu, svc.cpu_limit_m)
            vals = {"k8s.pod.cpu.usage": cpu, "k8s.pod.cpu.usage_rate": 100 * cpu / svc.cpu_limit_m,
                    "k8s.pod.memory.usage": mem_now, "k8s.pod.memory.usage_rate": 100 * mem_now / svc.memory_limit_mi,
                    "k8s.pod.workload": rps, "k8s.pod.restarts": float(restarts)}
            durs = engine.durations[pod.idx][k]
            if durs and not down:
                durs.sort()
                vals["k8s.pod.success_rate"] = 100.0 * (1 - engine.errors[pod.idx][k] / len(durs))
                vals["k8s.pod.server.latency.p50"] = _pct(durs, 0.5)
                vals["k8s.pod.server.latency.p90"] = _pct(durs, 0.9)
                vals["k8s.pod.server.latency.p99"] = _pct(durs, 0.99)
            for name, _ in METRICS:
                if name in vals:
                    points.append((t, pod.idx, name, _UNIT[name], round(vals[name], 6)))
    points.sort()
    return points
