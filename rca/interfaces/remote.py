"""The `rca serve` that holds a home's store, and a thin client of its REST API.

DuckDB lets one process open the store file. While `rca serve` runs on a home, it
advertises itself in ``<home>/server.json`` (the URL it answers at from this machine,
its pid, when it started); a CLI command whose store is locked finds it there and asks
it over HTTP instead, getting the same JSON its local path would print. A file left by a
killed server is ignored: its pid is gone, or is not the one DuckDB names as the lock
holder, or nothing answers at its URL; the original lock error is reported then.

API errors (``{"error": {"code", "message", "details"}}``) come back as the same
``RcaError`` subclasses the local path raises, so the CLI prints the same message with
the same exit code.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, fields
from pathlib import Path
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

from rca.config import Settings
from rca.errors import InvalidInput, NotFitted, NotFound, PayloadTooLarge, RcaError, StoreError

T = TypeVar("T")

SERVER_FILE = "server.json"
CONNECT_TIMEOUT_S = 5.0
HEALTH_TIMEOUT_S = 5.0
_ERRORS = {cls.code: cls for cls in (RcaError, InvalidInput, PayloadTooLarge, NotFound, NotFitted, StoreError)}
_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")


def server_file(settings: Settings) -> Path:
    return Path(settings.home) / SERVER_FILE


def reachable_url(host: str, port: int) -> str:
    """The URL a server bound to ``host:port`` answers at from this machine (wildcards -> loopback)."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def advertise(settings: Settings, url: str) -> Path:
    """Write ``<home>/server.json`` for this process (atomically: readers never see half a file)."""
    path = server_file(settings)
    doc = {"url": url, "pid": os.getpid(), "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "store": str(settings.db_path)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(doc) + "\n")
    os.replace(tmp, path)
    return path


def withdraw(settings: Settings) -> None:
    """Remove ``<home>/server.json`` if this process wrote it."""
    path = server_file(settings)
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, StoreError) and "Could not set lock" in exc.message


def find_server(settings: Settings, lock_error: StoreError | None = None) -> "RunningServer | None":
    """The live `rca serve` advertised in this home, or None (no file, stale file, nothing answering).

    With ``lock_error`` (DuckDB's, naming the pid that holds the lock), the server must be that process."""
    try:
        doc = json.loads(server_file(settings).read_text())
        server = RunningServer(url=str(doc["url"]).rstrip("/"), pid=int(doc["pid"]),
                               started_at=str(doc.get("started_at", "")), store=str(settings.db_path))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not _is_loopback(server.url):  # the CLI sends store contents to it: never off this machine
        return None
    holder = _LOCK_HOLDER.search(lock_error.message) if lock_error is not None else None
    if holder is not None and int(holder.group(1)) != server.pid:
        return None
    if not _alive(server.pid) or not server.answers():
        return None
    return server


def _is_loopback(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname or ""
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def connect(settings: Settings, read_only: bool = False):
    """The store opened here (a ``Runtime``), or the ``RunningServer`` that holds it.

    Any other failure to open the store (and a lock held by anything but a live server) is raised as is."""
    from rca.interfaces.runtime import Runtime

    runtime = Runtime(settings, read_only=read_only)
    try:
        runtime.store
    except StoreError as exc:
        server = find_server(settings, exc) if is_lock_error(exc) else None
        if server is None:
            raise
        return server
    return runtime


def here_or_there(settings: Settings, here: Callable[[Any], T], there: Callable[["RunningServer"], T],
                  read_only: bool = False) -> T:
    """``there(server)`` while `rca serve` holds the store, else ``here(runtime)`` on the store opened here
    (closed before this returns)."""
    target = connect(settings, read_only=read_only)
    if isinstance(target, RunningServer):
        return there(target)
    try:
        return here(target)
    finally:
        target.close()


def open_for_writing(settings: Settings, command: str, instead: str = ""):
    """A ``Runtime`` on the store for a command that must write it here; while `rca serve` holds the store,
    a StoreError saying what to do instead (``instead`` may name ``{url}``), or to stop the server."""
    target = connect(settings)
    if isinstance(target, RunningServer):
        raise StoreError(target.busy(command, instead.format(url=target.url)),
                         {"path": target.store, "pid": target.pid, "url": target.url})
    return target


@dataclass(frozen=True)
class RunningServer:
    """A live `rca serve` and the few calls the CLI makes to its API."""

    url: str
    pid: int
    started_at: str
    store: str

    def busy_head(self) -> str:
        return f"the store {self.store} is in use by `rca serve` (pid {self.pid}, {self.url})"

    def busy(self, command: str, instead: str = "") -> str:
        """What to tell a user whose command needs the store to itself."""
        head = self.busy_head()
        return f"{head}: {instead}, or stop the server and run `rca {command}` again" if instead else \
            f"{head}; stop the server and run `rca {command}` again"

    def answers(self) -> bool:
        import httpx

        try:
            with httpx.Client(trust_env=False, timeout=HEALTH_TIMEOUT_S) as client:
                r = client.get(f"{self.url}/healthz")
            return r.status_code == 200 and r.json().get("status") == "ok"
        except (httpx.HTTPError, ValueError, AttributeError):
            return False

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def request(self, method: str, path: str, params: dict | None = None, body: Any = None) -> Any:
        """One API call; its JSON, or the API's error raised as the matching RcaError."""
        import httpx

        # the server may take long (an explain fits a model first): no read limit, as when run here
        timeout = httpx.Timeout(None, connect=CONNECT_TIMEOUT_S)
        try:
            with httpx.Client(trust_env=False, timeout=timeout) as client:
                r = client.request(method, f"{self.url}{path}", params=params, json=body)
        except httpx.HTTPError as exc:
            raise StoreError(f"`rca serve` (pid {self.pid}, {self.url}) holds the store {self.store} but did not "
                             f"answer {method} {path}: {exc}", {"url": self.url}) from exc
        try:
            doc = r.json()
        except ValueError:
            doc = None
        if r.is_success and doc is not None:
            return doc
        error = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            cls = _ERRORS.get(error.get("code"), RcaError)
            raise cls(error["message"], error.get("details") or {})
        if r.status_code in (404, 405):  # a route this server does not have (an older version)
            raise StoreError(f"{self.busy_head()}, whose API has no {method} {path}; stop the server "
                             "to run this command here", {"url": self.url})
        raise RcaError(f"`rca serve` ({self.url}) answered {method} {path} with HTTP {r.status_code}: "
                       f"{r.text[:200]}", {"url": self.url, "status": r.status_code})


def segment(text: str) -> str:
    """``text`` as one URL path segment."""
    return quote(str(text), safe="")


# -------------------------------------------------- the API's JSON back as the objects the renderers take

def _pick(cls, doc: dict) -> dict:
    return {f.name: doc[f.name] for f in fields(cls) if f.name in doc}


def trace_view_from_dict(doc: dict):
    """GET /api/v1/traces/{id} -> ``rca.store.trace_view.TraceView``."""
    from rca.model import LogRecord, Span
    from rca.store.trace_view import TraceView

    spans = [Span(**_pick(Span, s)) for s in doc["spans"]]
    return TraceView(trace_id=doc["trace_id"], spans=spans,
                     self_time_ns={s["span_id"]: int(s["self_time_ns"]) for s in doc["spans"]},
                     logs=[LogRecord(**_pick(LogRecord, r)) for r in doc["logs"]])


def explanation_from_dict(doc: dict):
    """POST /api/v1/explain -> ``rca.model.Explanation``."""
    from rca.kb.feedback import hypothesis_from_dict
    from rca.model import Explanation

    out = Explanation(**_pick(Explanation, doc))
    out.hypotheses = [hypothesis_from_dict(h) for h in doc.get("hypotheses") or []]
    return out


def template_report_from_dict(doc: dict):
    """GET /api/v1/templates -> ``rca.templates.report.TemplateReport``."""
    from rca.templates.report import TemplateReport, TemplateRow

    return TemplateReport(service=doc["service"], start_ns=doc["start_ns"], end_ns=doc["end_ns"],
                          n_lines=doc["n_lines"], n_templates=doc["n_templates"],
                          rows=[TemplateRow(**_pick(TemplateRow, r)) for r in doc["templates"]])
