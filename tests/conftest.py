"""Shared fixtures: a fresh RCA home, and a real uvicorn server on a free 127.0.0.1 port.

``live_server`` (a started server on ``tmp_path / "home"``) and ``start_server``
(a factory, for tests that stop and start servers on the same home) are meant
for every test that talks HTTP.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

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
