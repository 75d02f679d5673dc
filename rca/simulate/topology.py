"""Topologies as data: services, their operations and calls, request mix (YAML).

``load_topology("shop")`` reads a built-in file from ``rca/simulate/topologies``;
any other argument is a path to the user's own YAML. Validation errors name the
place in the file (``services.cart.operations.GetCart.calls[1]: ...``) and are
raised as :class:`~rca.errors.InvalidInput`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rca.errors import InvalidInput

BUILTIN_DIR = Path(__file__).with_name("topologies")
KINDS = ("app", "database", "cache")
LANGUAGES = ("java", "go", "python", "node", "dotnet", "postgres", "redis")
LEVELS = ("DEBUG", "INFO", "WARN", "ERROR")


@dataclass(frozen=True)
class LogSpec:
    level: str
    message: str
    p: float = 1.0


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    p: float = 1.0
    n: tuple[int, int] = (1, 1)
    timeout_ms: float = 1000.0
    retries: int = 1
    backoff_ms: float = 50.0
    optional: bool = False          # failure degrades the caller, does not fail it
    fallback: tuple[str, str] | None = None  # (service, operation) called on a cache miss


@dataclass(frozen=True)
class Operation:
    name: str
    median_ms: float
    sigma: float
    parallel: bool = False
    locks: bool = False             # database write that takes row locks
    write: bool = False             # cache write (SET) rather than read
    calls: tuple[Call, ...] = ()
    logs: tuple[LogSpec, ...] = ()


@dataclass(frozen=True)
class Service:
    name: str
    kind: str
    language: str
    replicas: int
    version: str
    cpu_ms: float                   # CPU milliseconds per request (for the CPU metric)
    cpu_limit_m: float
    memory_mi: float
    memory_limit_mi: float
    hit_ratio: float                # caches only
    background_error_p: float
    operations: dict[str, Operation] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestType:
    name: str
    service: str
    operation: str
    weight: float


@dataclass(frozen=True)
class Topology:
    name: str
    namespace: str
    description: str
    services: dict[str, Service]
    requests: tuple[RequestType, ...]

    def callers_of(self, service: str) -> list[str]:
        return [s.name for s in self.services.values()
                if any(c.service == service or (c.fallback and c.fallback[0] == service)
                       for op in s.operations.values() for c in op.calls)]

    def callees_of(self, service: str) -> list[str]:
        out: list[str] = []
        for op in self.services[service].operations.values():
            for c in op.calls:
                for s in (c.service, c.fallback[0] if c.fallback else None):
                    if s and s not in out:
                        out.append(s)
        return out

    @property
    def entry_services(self) -> list[str]:
        return list(dict.fromkeys(r.service for r in self.requests))


def load_topology(name_or_path: str | Path) -> Topology:
    """A built-in topology by name (``shop``, ``ridehail``) or a YAML file by path."""
    import yaml

    path = Path(name_or_path)
    builtin = BUILTIN_DIR / f"{name_or_path}.yaml"
    if not path.suffix and builtin.is_file():
        path = builtin
    if not path.is_file():
        known = ", ".join(builtin_topologies())
        raise InvalidInput(f"topology {str(name_or_path)!r}: no such built-in ({known}) or file")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InvalidInput(f"topology {path.name}: not valid YAML: {exc}") from exc
    return parse_topology(doc, source=path.name)


def builtin_topologies() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


class _Where:
    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, msg: str) -> InvalidInput:
        return InvalidInput(f"topology {self.source}: {where}: {msg}", {"where": where})


def _num(w: _Where, where: str, v: Any, lo: float, hi: float = float("inf")) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise w.fail(where, f"expected a number, got {v!r}")
    if not lo <= v <= hi:
        raise w.fail(where, f"{v} is out of range [{lo}, {hi}]")
    return float(v)


def _target(w: _Where, where: str, v: Any) -> tuple[str, str]:
    if not isinstance(v, str) or "." not in v:
        raise w.fail(where, f"expected 'service.Operation', got {v!r}")
    svc, op = v.split(".", 1)
    return svc.strip(), op.strip()


def _parse_call(w: _Where, where: str, raw: Any, defaults: dict) -> Call:
    if isinstance(raw, str):
        raw = {"to": raw}
    if not isinstance(raw, dict) or "to" not in raw:
        raise w.fail(where, "a call is 'service.Operation' or a mapping with 'to'")
    unknown = set(raw) - {"to", "p", "n", "timeout_ms", "retries", "backoff_ms", "optional", "fallback"}
    if unknown:
        raise w.fail(where, f"unknown keys {sorted(unknown)}")
    svc, op = _target(w, f"{where}.to", raw["to"])
    n = raw.get("n", 1)
    n = (n, n) if isinstance(n, int) and not isinstance(n, bool) else n
    if not (isinstance(n, (list, tuple)) and len(n) == 2 and all(isinstance(x, int) for x in n) and 1 <= n[0] <= n[1]):
        raise w.fail(f"{where}.n", f"expected an integer or [min, max] with 1 <= min <= max, got {raw.get('n')!r}")
    get = {**defaults, **raw}
    return Call(service=svc, operation=op, p=_num(w, f"{where}.p", get.get("p", 1.0), 0.0, 1.0), n=(n[0], n[1]),
                timeout_ms=_num(w, f"{where}.timeout_ms", get["timeout_ms"], 1.0),
                retries=int(_num(w, f"{where}.retries", get["retries"], 0, 10)),
                backoff_ms=_num(w, f"{where}.backoff_ms", get["backoff_ms"], 0.0),
                optional=bool(get.get("optional", False)),
                fallback=_target(w, f"{where}.fallback", raw["fallback"]) if raw.get("fallback") else None)


def _parse_log(w: _Where, where: str, raw: Any) -> LogSpec:
    if isinstance(raw, str):
        level, _, msg = raw.partition(" ")
        raw = {"level": level, "message": msg}
    if not isinstance(raw, dict) or not raw.get("message"):
        raise w.fail(where, "a log is 'LEVEL message' or a mapping with level, message[, p]")
    level = str(raw.get("level", "INFO")).upper()
    if level not in LEVELS:
        raise w.fail(where, f"level {level!r} is not one of {', '.join(LEVELS)}")
    return LogSpec(level=level, message=str(raw["message"]), p=_num(w, f"{where}.p", raw.get("p", 1.0), 0.0, 1.0))


def _parse_operation(w: _Where, where: str, name: str, raw: Any, defaults: dict) -> Operation:
    if not isinstance(raw, dict):
        raise w.fail(where, "an operation is a mapping with latency_ms, calls, logs")
    lat = raw.get("latency_ms")
    if not (isinstance(lat, (list, tuple)) and len(lat) == 2):
        raise w.fail(f"{where}.latency_ms", f"expected [median_ms, sigma] of a lognormal, got {lat!r}")
    calls = raw.get("calls") or []
    logs = raw.get("logs") or []
    if not isinstance(calls, list):
        raise w.fail(f"{where}.calls", "expected a list")
    if not isinstance(logs, list):
        raise w.fail(f"{where}.logs", "expected a list")
    return Operation(
        name=name, median_ms=_num(w, f"{where}.latency_ms[0]", lat[0], 0.001),
        sigma=_num(w, f"{where}.latency_ms[1]", lat[1], 0.0, 3.0), parallel=bool(raw.get("parallel", False)),
        locks=bool(raw.get("locks", False)), write=bool(raw.get("write", False)),
        calls=tuple(_parse_call(w, f"{where}.calls[{i}]", c, defaults) for i, c in enumerate(calls)),
        logs=tuple(_parse_log(w, f"{where}.logs[{i}]", x) for i, x in enumerate(logs)))


def _parse_service(w: _Where, name: str, raw: Any, defaults: dict) -> Service:
    where = f"services.{name}"
    if not isinstance(raw, dict):
        raise w.fail(where, "a service is a mapping")
    kind = raw.get("kind", "app")
    if kind not in KINDS:
        raise w.fail(f"{where}.kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    lang = raw.get("language", {"database": "postgres", "cache": "redis"}.get(kind, "go"))
    if lang not in LANGUAGES:
        raise w.fail(f"{where}.language", f"{lang!r} is not one of {', '.join(LANGUAGES)}")
    ops = raw.get("operations")
    if not isinstance(ops, dict) or not ops:
        raise w.fail(f"{where}.operations", "a service needs at least one operation")
    return Service(
        name=name, kind=kind, language=lang, replicas=int(_num(w, f"{where}.replicas", raw.get("replicas", 1), 1, 20)),
        version=str(raw.get("version", "1.0.0")), cpu_ms=_num(w, f"{where}.cpu_ms", raw.get("cpu_ms", 2.0), 0.0),
        cpu_limit_m=_num(w, f"{where}.cpu_limit_m", raw.get("cpu_limit_m", 1000), 1.0),
        memory_mi=_num(w, f"{where}.memory_mi", raw.get("memory_mi", 256), 1.0),
        memory_limit_mi=_num(w, f"{where}.memory_limit_mi", raw.get("memory_limit_mi", 1024), 1.0),
        hit_ratio=_num(w, f"{where}.hit_ratio", raw.get("hit_ratio", 0.9), 0.0, 1.0),
        background_error_p=_num(w, f"{where}.background_error_p", raw.get("background_error_p", 0.002), 0.0, 0.2),
        operations={str(k): _parse_operation(w, f"{where}.operations.{k}", str(k), v, defaults)
                    for k, v in ops.items()})


def parse_topology(doc: Any, source: str = "<yaml>") -> Topology:
    """Validate a parsed YAML document into a Topology (InvalidInput with the place on error)."""
    w = _Where(source)
    if not isinstance(doc, dict):
        raise w.fail("top level", "expected a mapping with name, services, requests")
    for key in ("name", "services", "requests"):
        if key not in doc:
            raise w.fail("top level", f"missing key {key!r}")
    defaults = {"timeout_ms": 1000.0, "retries": 1, "backoff_ms": 50.0, **(doc.get("defaults") or {})}
    if not isinstance(doc["services"], dict) or not doc["services"]:
        raise w.fail("services", "expected a non-empty mapping of service name -> service")
    services = {str(k): _parse_service(w, str(k), v, defaults) for k, v in doc["services"].items()}
    _check_references(w, services)
    reqs = doc["requests"]
    if not isinstance(reqs, list) or not reqs:
        raise w.fail("requests", "expected a non-empty list of request types")
    requests = []
    for i, r in enumerate(reqs):
        where = f"requests[{i}]"
        if not isinstance(r, dict) or "entry" not in r:
            raise w.fail(where, "a request type is a mapping with name, entry ('service.Operation'), weight")
        svc, op = _target(w, f"{where}.entry", r["entry"])
        if svc not in services or op not in services[svc].operations:
            raise w.fail(f"{where}.entry", f"unknown operation {svc}.{op}")
        requests.append(RequestType(name=str(r.get("name", f"{svc}.{op}")), service=svc, operation=op,
                                    weight=_num(w, f"{where}.weight", r.get("weight", 1.0), 0.0001)))
    return Topology(name=str(doc["name"]), namespace=str(doc.get("namespace", doc["name"])),
                    description=str(doc.get("description", "")), services=services, requests=tuple(requests))


def _check_references(w: _Where, services: dict[str, Service]) -> None:
    for s in services.values():
        for op in s.operations.values():
            for i, c in enumerate(op.calls):
                where = f"services.{s.name}.operations.{op.name}.calls[{i}]"
                for svc, name in ((c.service, c.operation), c.fallback or (None, None)):
                    if svc is None:
                        continue
                    if svc not in services:
                        raise w.fail(where, f"unknown service {svc!r} (known: {', '.join(services)})")
                    if name not in services[svc].operations:
                        raise w.fail(where, f"service {svc!r} has no operation {name!r} "
                                            f"(it has: {', '.join(services[svc].operations)})")
                if c.fallback and services[c.service].kind != "cache":
                    raise w.fail(where, "a fallback is only meaningful on a call to a cache service")
    # call cycles would recurse forever
    state: dict[tuple[str, str], int] = {}

    def visit(key: tuple[str, str], path: list[str]) -> None:
        if state.get(key) == 2:
            return
        if state.get(key) == 1:
            raise w.fail("services", f"call cycle: {' -> '.join(path + [f'{key[0]}.{key[1]}'])}")
        state[key] = 1
        for c in services[key[0]].operations[key[1]].calls:
            visit((c.service, c.operation), path + [f"{key[0]}.{key[1]}"])
            if c.fallback:
                visit(c.fallback, path + [f"{key[0]}.{key[1]}"])
        state[key] = 2

    for s in services.values():
        for op in s.operations:
            visit((s.name, op), [])
