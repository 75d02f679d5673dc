"""Log lines in each service's own style (logback, logrus JSON, pino, .NET console, Python
logging, PostgreSQL, Redis), with message placeholders filled from seeded generators."""

from __future__ import annotations

import json
import re
import time
from random import Random

SEVERITY = {"DEBUG": 5, "INFO": 9, "WARN": 13, "ERROR": 17, "FATAL": 21}
_PH = re.compile(r"\{([a-z_]+)\}")
_CURRENCIES = ("USD", "EUR", "JPY", "GBP", "CAD", "TRY", "CHF")
_WORDS = ("clothing", "accessories", "footwear", "hair", "decor", "kitchen", "vintage", "cycling", "gardening")
_ZONES = ("sf-mission", "sf-soma", "oak-downtown", "sjc-north", "sfo-airport", "berkeley", "palo-alto")


def _uuid(rng: Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


class Filler:
    """Fills ``{placeholder}``s; users, products and drivers repeat (pools), ids do not."""

    def __init__(self, rng: Random):
        self.rng = rng
        self.users = [_uuid(rng) for _ in range(800)]
        self.products = ["".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(10)) for _ in range(40)]
        self.drivers = [f"drv_{rng.getrandbits(40):010x}" for _ in range(300)]
        r = rng
        self.gen = {
            "user": lambda: r.choice(self.users),
            "rider": lambda: r.choice(self.users),
            "session": lambda: _uuid(r),
            "product": lambda: r.choice(self.products),
            "order": lambda: _uuid(r),
            "trip": lambda: f"trp_{r.getrandbits(48):012x}",
            "txn": lambda: f"txn_{r.getrandbits(48):012x}",
            "driver": lambda: r.choice(self.drivers),
            "amount": lambda: f"{r.lognormvariate(3.5, 0.8):.2f}",
            "currency": lambda: r.choice(_CURRENCIES),
            "n": lambda: str(r.randint(1, 6)),
            "ms": lambda: f"{r.lognormvariate(1.5, 0.6):.1f}",
            "email": lambda: f"{r.choice(self.users)[:8]}@example.com",
            "key": lambda: r.choice(_WORDS),
            "card": lambda: f"{r.randint(0, 9999):04d}",
            "tracking": lambda: f"{r.choice('ABCDEFGHJK')}{r.choice('LMNPQRSTUV')}-{r.randint(10000, 99999)}-{r.randint(1000000, 9999999)}",
            "ip": lambda: f"10.{r.randint(0, 3)}.{r.randint(0, 255)}.{r.randint(2, 254)}",
            "lat": lambda: f"{37.7 + r.random() * 0.1:.5f}",
            "lon": lambda: f"{-122.5 + r.random() * 0.1:.5f}",
            "zone": lambda: r.choice(_ZONES),
            "pid": lambda: str(r.randint(1000, 60000)),
            "xid": lambda: str(r.randint(100000, 999999)),
        }
        self._compiled: dict[str, list] = {}

    def placeholders(self) -> set[str]:
        return set(self.gen)

    def fill(self, template: str) -> str:
        parts = self._compiled.get(template)
        if parts is None:
            parts = []
            pos = 0
            for m in _PH.finditer(template):
                parts.append(template[pos:m.start()])
                parts.append(self.gen.get(m.group(1)) or (lambda s=m.group(0): s))
                pos = m.end()
            parts.append(template[pos:])
            self._compiled[template] = parts
        return "".join(p if isinstance(p, str) else p() for p in parts)


def placeholder_names(template: str) -> list[str]:
    return _PH.findall(template)


class Formatter:
    """``format(language, time_ns, level, logger, message, trace_id, span_id, pod)`` -> log body."""

    def __init__(self):
        self._sec: dict[tuple[str, int], str] = {}

    def _stamp(self, style: str, sec: int) -> str:
        s = self._sec.get((style, sec))
        if s is None:
            g = time.gmtime(sec)
            s = time.strftime({"iso": "%Y-%m-%dT%H:%M:%S", "space": "%Y-%m-%d %H:%M:%S",
                               "redis": "%d %b %Y %H:%M:%S"}[style], g)
            self._sec[(style, sec)] = s
        return s

    def format(self, lang: str, t_ns: int, level: str, logger: str, msg: str, trace_id: str, span_id: str,
               pod: str, thread: int) -> str:
        sec, ms = divmod(t_ns // 1_000_000, 1000)
        if lang == "java":
            return (f"{self._stamp('space', sec)}.{ms:03d} {level:>5} 1 --- [nio-8080-exec-{thread}] "
                    f"{logger:<36} : {msg}")
        if lang == "go":
            return json.dumps({"level": level.lower().replace("warn", "warning"), "msg": msg,
                               "time": f"{self._stamp('iso', sec)}.{ms:03d}Z", "trace_id": trace_id,
                               "span_id": span_id}, separators=(",", ":"))
        if lang == "node":
            return json.dumps({"level": {"DEBUG": 20, "INFO": 30, "WARN": 40, "ERROR": 50, "FATAL": 60}[level],
                               "time": sec * 1000 + ms, "pid": 1, "hostname": pod, "name": logger, "msg": msg},
                              separators=(",", ":"))
        if lang == "dotnet":
            lv = {"DEBUG": "dbug", "INFO": "info", "WARN": "warn", "ERROR": "fail", "FATAL": "crit"}[level]
            return f"{lv}: {logger}[0] {msg}"
        if lang == "python":
            return (f"{self._stamp('space', sec)},{ms:03d} {level} [{logger}] "
                    f"[trace_id={trace_id or '0'} span_id={span_id or '0'}] - {msg}")
        if lang == "postgres":
            lv = {"DEBUG": "DEBUG", "INFO": "LOG", "WARN": "WARNING", "ERROR": "ERROR", "FATAL": "FATAL"}[level]
            return f"{self._stamp('space', sec)}.{ms:03d} UTC [{thread}] {lv}:  {msg}"
        sym = {"DEBUG": ".", "INFO": "*", "WARN": "#", "ERROR": "#", "FATAL": "#"}[level]
        return f"1:M {self._stamp('redis', sec)}.{ms:03d} {sym} {msg}"


def logger_name(lang: str, service: str, operation: str = "") -> str:
    camel = "".join(p.capitalize() for p in re.split(r"[-_ ]", service) if p)
    if lang == "java":
        return f"c.s.{service.replace('-', '')}.{camel}Service"
    if lang == "dotnet":
        return f"{camel.lower()}.{camel}Store"
    if lang == "python":
        return f"{service.replace('-', '_')}.server"
    return service


# Messages of failures, per language. {peer} {op} {ms} {code} are filled by the engine.
EXCEPTIONS = {
    "java": [("java.lang.IllegalStateException", "Inventory snapshot is stale for request {order}"),
             ("org.springframework.dao.DataAccessResourceFailureException", "Unable to acquire JDBC Connection"),
             ("java.lang.ArithmeticException", "Rounding necessary while computing total {amount}")],
    "go": [("*errors.errorString", "invalid quote for items={n}: negative weight"),
           ("*status.Error", "rpc error: code = Internal desc = failed to marshal response")],
    "python": [("ValueError", "could not convert recommendation score for product {product}"),
               ("RuntimeError", "template rendering failed for order {order}")],
    "node": [("Error", "Invalid currency code {currency}: rate table missing"),
             ("RangeError", "Invalid array length while aggregating {n} items")],
    "dotnet": [("System.InvalidOperationException", "Cart state for user {user} is inconsistent"),
               ("System.FormatException", "Input string was not in a correct format.")],
    "postgres": [("PSQLException", "could not read block {n} in file \"base/16384/24576\": read only 0 of 8192 bytes")],
    "redis": [("RedisError", "ERR unknown command, with args beginning with: {key}")],
}
DEPLOY_BUGS = {
    "java": ("java.lang.NullPointerException",
             "Cannot invoke \"com.shop.model.Money.getUnits()\" because \"price\" is null (order {order})"),
    "go": ("runtime.Error", "panic recovered: runtime error: invalid memory address or nil pointer dereference "
                            "[signal SIGSEGV: segmentation violation code=0x1 addr=0x18 pc=0x{n}f3a2c]"),
    "python": ("KeyError", "KeyError: 'discount_code' while building payload for user {user}"),
    "node": ("TypeError", "TypeError: Cannot read properties of undefined (reading 'nanos') at convert "
                          "(/usr/src/app/server.js:{n}1:27)"),
    "dotnet": ("System.NullReferenceException", "Object reference not set to an instance of an object. "
                                                "at CartStore.Migrate(UserCart cart) line {n}4"),
    "postgres": ("PSQLException", "column \"loyalty_tier\" does not exist at character {n}7"),
    "redis": ("RedisError", "WRONGTYPE Operation against a key holding the wrong kind of value"),
}
NOISE = {
    "java": ["WARN Slow request detected for GET ad request, took {ms} ms",
             "WARN HikariPool-1 - Thread starvation or clock leap detected (housekeeper delta={ms}ms)"],
    "go": ["WARN client disconnected before response was written session={session}",
           "ERROR failed to flush metrics buffer: context canceled"],
    "python": ["WARN feature flag cache refresh took {ms}ms, using stale flags",
               "ERROR SMTP connection reset by peer, will retry in background"],
    "node": ["WARN slow event loop lag={ms}ms", "ERROR unhandled promise rejection: socket hang up"],
    "dotnet": ["WARN Connection multiplexer reconnecting after transient socket error",
               "ERROR Request aborted by client: The operation was canceled."],
    "postgres": ["INFO checkpoint complete: wrote {n}21 buffers (0.{n}%); 0 WAL file(s) added",
                 "WARN there is no transaction in progress", "INFO automatic vacuum of table \"shop.public.orders\""],
    "redis": ["INFO Background saving started by pid {pid}", "INFO DB saved on disk"],
}
