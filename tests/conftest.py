"""Shared fixtures: a fresh RCA home, and a real uvicorn server on a free 127.0.0.1 port;
``start_serve``/``stop_serve`` run a real `rca serve` process instead (restarts, kill -9, the CLI beside it).

``live_server`` (a started server on ``tmp_path / "home"``) and ``start_server``
(a factory, for tests that stop and start servers on the same home) are meant
for every test that talks HTTP.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rca.config import Settings


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    url: str  # http://127.0.0.1:PORT
    runtime: object  # rca.interfaces.runtime.Runtime
    settings: Settings
    server: object
    thread: threading.Thread

    def stop(self) -> None:
        """Stop serving, then close the store (everything acknowledged is committed)."""
        if self.thread.is_alive():
            self.server.should_exit = True
            self.thread.join(timeout=30)
        self.runtime.close()


def start_live_server(settings: Settings) -> LiveServer:
    import uvicorn

    from rca.ingest.otlp_wire import warm_up
    from rca.interfaces.api.app import create_app
    from rca.interfaces.runtime import Runtime

    warm_up()  # as `rca serve` does: a cold numba compile (~20 s, once) must not land inside a request
    settings = settings.with_(host="127.0.0.1", port=free_port())
    runtime = Runtime(settings)
    config = uvicorn.Config(create_app(runtime), host=settings.host, port=settings.port, log_level="warning",
                            ws="none", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{settings.port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            runtime.close()
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return LiveServer(f"http://{settings.host}:{settings.port}", runtime, settings, server, thread)


@pytest.fixture
def rca_home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def settings(rca_home: Path) -> Settings:
    return Settings(home=rca_home)


@pytest.fixture
def start_server():
    """Factory: ``start_server(settings) -> LiveServer``; every server started is stopped at teardown."""
    started: list[LiveServer] = []

    def start(settings: Settings) -> LiveServer:
        srv = start_live_server(settings)
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def live_server(start_server, settings: Settings) -> LiveServer:
    """A running server (OTLP receiver + API) on a fresh store under tmp_path."""
    return start_server(settings)


RCA = [sys.executable, "-m", "rca.interfaces.cli.main"]


def start_serve(home: Path, timeout_s: float = 120) -> tuple[subprocess.Popen, str]:
    """``rca serve --port 0`` on ``home``; returns it and the URL it advertised once that answers
    (a cold start compiles the protobuf decoder first)."""
    home.mkdir(parents=True, exist_ok=True)
    log = home.parent / f"serve-{time.monotonic_ns()}.log"  # a file, not a pipe: a chatty server never blocks
    with open(log, "w") as err:
        proc = subprocess.Popen([*RCA, "--home", str(home), "serve", "--port", "0", "--log-level", "warning"],
                                stdout=subprocess.DEVNULL, stderr=err, text=True)
    proc.log = log
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            doc = json.loads((home / "server.json").read_text())
            if doc["pid"] == proc.pid and httpx.get(f"{doc['url']}/healthz", timeout=2).status_code == 200:
                return proc, doc["url"]
        except (OSError, ValueError, KeyError, httpx.TransportError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"rca serve did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)


def stop_serve(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
