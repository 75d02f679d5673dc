"""What each fault kind does where it originates; the engine propagates the rest
(callers wait, time out, retry, log upstream errors)."""

from __future__ import annotations

import math
from random import Random
from typing import TYPE_CHECKING

from rca.simulate.logstyle import DEPLOY_BUGS, EXCEPTIONS, NOISE

if TYPE_CHECKING:  # pragma: no cover
    from rca.simulate.engine import Engine, Pod
    from rca.simulate.faults import Fault

_S = 1_000_000_000

_REFUSED = {
    "java": "java.net.ConnectException: Connection refused ({peer}:8080)",
    "go": "dial tcp {ip}:8080: connect: connection refused",
    "node": "connect ECONNREFUSED {ip}:8080",
    "python": "ConnectionRefusedError: [Errno 111] Connection refused ({peer}:8080)",
    "dotnet": "System.Net.Http.HttpRequestException: Connection refused ({peer}:8080)",
}
_CRASH = {
    "app": "failed to start: could not load configuration /etc/{svc}/config.yaml: permission denied",
    "database": "could not write to file \"pg_wal/xlogtemp.{pid}\": No space left on device",
    "cache": "Fatal error loading the DB: Invalid argument. Exiting.",
}
_GC = {
    "java": "GC overhead high: pause {ms}00ms, heap {pct}% of max used",
    "go": "memory pressure: heap_inuse={mb}MiB gc_pause={ms}0ms",
    "node": "<--- Last few GCs ---> Mark-Compact {mb} (heap {pct}%) {ms}00 ms: allocation failure",
    "python": "memory usage high rss={mb}MiB ({pct}% of limit)",
    "dotnet": "GC gen2 collection took {ms}00ms, heap {mb}MiB",
}
_OOM = {
    "java": ("java.lang.OutOfMemoryError", "Java heap space"),
    "go": ("runtime.Error", "runtime: out of memory: cannot allocate 4194304-byte block"),
    "node": ("RangeError", "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"),
    "python": ("MemoryError", "MemoryError while building response"),
    "dotnet": ("System.OutOfMemoryException", "Exception of type 'System.OutOfMemoryException' was thrown."),
}


class Effects:
    def __init__(self, engine: "Engine"):
        self.e = engine
        self.down = [f for f in engine.faults if f.kind == "dependency_down"]
        self.net = [f for f in engine.faults if f.kind == "network_delay"]
        self._exc: dict[int, tuple[str, str]] = {}

    # --- state over time ------------------------------------------------------------------
    def is_down(self, pod: "Pod", t: int) -> bool:
        return any(f.pod == pod.name and f.start_ns <= t < f.end_ns for f in self.down) if self.down else False

    def net_delay(self, a: "Pod", b: "Pod", t: int) -> float:
        if not self.net:
            return 0.0
        d = 0.0
        for f in self.net:
            if (f.pod == a.name or f.pod == b.name) and f.start_ns <= t < f.end_ns:
                d += f.intensity * self.e.rng.lognormvariate(math.log(70), 0.35)
        return d

    def storm(self, pod: "Pod", t: int):
        for f in pod.faults:
            if f.kind == "retry_storm" and f.start_ns <= t < f.end_ns:
                return f
        return None

    @staticmethod
    def memory_fraction(pod: "Pod", f: "Fault", t: int) -> float:
        """Used share of the memory limit while a leak runs (the base share when it does not)."""
        base = pod.svc.memory_mi / pod.svc.memory_limit_mi
        if not f.start_ns <= t < f.end_ns:
            return base
        progress = (t - f.start_ns) / (f.end_ns - f.start_ns)
        full = 0.45 + 0.35 * (1 - f.intensity)        # share of the window until the limit is near
        return base + (0.98 - base) * min(1.0, progress / full)

    def refused_text(self, pod: "Pod", callee: "Pod") -> str:
        tmpl = _REFUSED.get(pod.lang, _REFUSED["go"])
        return tmpl.replace("{peer}", callee.service).replace("{ip}", f"10.0.{callee.idx}.{17 + callee.idx}")

    # --- effects at the origin -----------------------------------------------------------
    def at_origin(self, f: "Fault", pod: "Pod", op, t0: int, self_ms: float, err, miss: bool, logs: list):
        from rca.simulate.engine import Err

        rng = self.e.rng
        k, x = f.kind, f.intensity
        if k == "latency":
            self_ms += rng.lognormvariate(math.log(40 + 160 * x), 0.4)
        elif k == "cpu_contention":
            self_ms *= 1 + 1.5 * x
        elif k == "memory_leak":
            frac = self.memory_fraction(pod, f, t0)
            if frac > 0.8:
                self_ms *= 1 + 4 * x * (frac - 0.8) / 0.2
                if rng.random() < 0.06:
                    self_ms += rng.lognormvariate(math.log(300), 0.5)
            if frac > 0.93 and rng.random() < 0.35 * x:
                typ, msg = _OOM.get(pod.lang, _OOM["go"])
                err = Err("oom", typ, msg)
        elif k == "exception" and rng.random() < 0.2 + 0.5 * x:
            typ, msg = self._exception_of(f, pod)
            err = Err("exception", typ, self.e.filler.fill(msg))
        elif k == "bad_deploy" and rng.random() < 0.15 + 0.35 * x:
            typ, msg = DEPLOY_BUGS.get(pod.lang, DEPLOY_BUGS["go"])
            err = Err("late", typ, self.e.filler.fill(msg))
        elif k == "db_lock" and op.locks:
            wait = x * rng.lognormvariate(math.log(350), 0.9)
            if wait > 1000:
                logs.append((0.9, "INFO", f"process {{pid}} still waiting for ShareLock on transaction {{xid}} "
                                          f"after {min(wait, 2500):.3f} ms"))
            if wait > 2500:
                wait = 2500
                err = Err("lock", "LockNotAvailable", "canceling statement due to lock timeout")
            elif rng.random() < 0.04 * x:
                err = Err("lock", "DeadlockDetected", "deadlock detected")
            self_ms += wait
        elif k == "cache_failure":
            self_ms *= 2
            miss = miss or rng.random() < 0.9 + 0.1 * x
            if op.write and rng.random() < 0.6 * x:
                err = Err("oom", "OOM", "command not allowed when used memory > 'maxmemory'.")
        return self_ms, err, miss

    def _exception_of(self, f: "Fault", pod: "Pod") -> tuple[str, str]:
        key = id(f)
        if key not in self._exc:
            choices = EXCEPTIONS.get(pod.lang, EXCEPTIONS["go"])
            self._exc[key] = choices[Random(f"{f.pod}-{f.start_ns}").randrange(len(choices))]
        return self._exc[key]

    def background(self, pod: "Pod", logs: list):
        """Healthy services misbehave now and then: a warning, rarely a transient error."""
        from rca.simulate.engine import Err

        rng = self.e.rng
        if rng.random() < 0.25:
            typ, msg = rng.choice(EXCEPTIONS.get(pod.lang, EXCEPTIONS["go"]))
            return Err("exception", typ, self.e.filler.fill(msg))
        level, _, msg = rng.choice(NOISE[pod.lang]).partition(" ")
        logs.append((rng.random(), level, msg))
        return None

    # --- logs that belong to no request --------------------------------------------------
    def startup_logs(self) -> None:
        e = self.e
        rng = Random(f"background-{e.seed}")
        for pod in e.pods:      # background lines, about two a minute per pod
            t = e.start_ns + int(rng.uniform(0, 60) * _S)
            while t < e.end_ns:
                level, _, msg = rng.choice(NOISE[pod.lang]).partition(" ")
                e.log(pod, t, level, msg)
                t += int(rng.expovariate(1 / 40) * _S) + _S
        for f in e.faults:
            pod = e.by_name[f.pod]
            if f.kind == "bad_deploy":
                major, _, rest = pod.version.partition(".")
                e.log(pod, f.start_ns, "INFO", f"Starting {pod.service} version {major}.{int(rest.split('.')[0] or 0) + 1}.0")
            elif f.kind == "retry_storm":
                e.log(pod, f.start_ns, "INFO", "configuration reloaded: client.retry.max_attempts=5 "
                                              "client.retry.backoff=none client.timeout=adaptive")
            elif f.kind == "dependency_down":
                kind = pod.svc.kind
                t, back = f.start_ns, 10
                while t < f.end_ns:
                    e.log(pod, t, "INFO", f"Starting {pod.service} {pod.version}")
                    e.log(pod, t + int(rng.uniform(1, 3) * _S), "FATAL",
                          _CRASH[kind].replace("{svc}", pod.service))
                    t += back * _S
                    back = min(back * 2, 80)
            elif f.kind == "cache_failure":
                t = f.start_ns
                while t < f.end_ns:
                    e.log(pod, t, "WARN", "used_memory={n}.9G exceeds maxmemory 2G: evicted {pid} keys "
                                          "(maxmemory-policy allkeys-lru)")
                    t += int(rng.uniform(2, 6) * _S)
            elif f.kind == "memory_leak" and pod.lang in _GC:
                t = f.start_ns
                while t < f.end_ns:
                    frac = self.memory_fraction(pod, f, t)
                    if frac > 0.75:
                        msg = (_GC[pod.lang].replace("{pct}", str(int(frac * 100)))
                               .replace("{mb}", str(int(frac * pod.svc.memory_limit_mi))))
                        e.log(pod, t, "WARN", msg)
                    t += int(rng.uniform(3, 8) * _S)
