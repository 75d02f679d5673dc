"""`rca serve`: the OTLP/HTTP receiver, REST API and web UI on one port.

Once listening, the server advertises itself in ``<home>/server.json`` (rca.interfaces.remote),
so that CLI commands on the same home go through its API while it holds the store; the file
is removed when it stops (Ctrl+C or SIGTERM: both shut down gracefully and close the store).
"""

from __future__ import annotations

from contextlib import contextmanager

import click


@click.command()
@click.option("--host", default=None, help="Address to listen on. Default: $RCA_HOST or 127.0.0.1.")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="Port (0: any free one). Default: $RCA_PORT or 4318 (OTLP/HTTP).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True)
@click.pass_obj
def serve(settings, host: str | None, port: int | None, log_level: str) -> None:
    """Receive OTLP/HTTP (protobuf and JSON, gzip) on /v1/traces, /v1/logs, /v1/metrics and serve the API.

    Point any OpenTelemetry SDK or Collector at it unchanged, e.g.
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318.
    While it runs, the CLI's read and analysis commands on the same home go through its API.
    """
    import uvicorn

    from rca.errors import InvalidInput, StoreError
    from rca.ingest.otlp_wire import warm_up
    from rca.interfaces.api.app import create_app
    from rca.interfaces.remote import RunningServer, advertise, connect, reachable_url, withdraw

    # compile the protobuf trace decoder (or load it from numba's cache, ~1 s) before the first request, and
    # before the store is locked: a first compile takes 20-60 s, during which the CLI could not yet use this server
    warm_up()
    settings = settings.with_(host=host or settings.host, port=settings.port if port is None else port)
    runtime = connect(settings)  # open now: a locked or unreadable store fails here, with a clear message
    if isinstance(runtime, RunningServer):
        raise StoreError(f"{runtime.busy_head()}: it already serves this home", {"url": runtime.url})

    try:
        sock = _listen(settings.host, settings.port)
    except OSError as exc:
        runtime.close()
        raise InvalidInput(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}",
                           {"host": settings.host, "port": settings.port}) from exc
    url = reachable_url(*sock.getsockname()[:2])

    class AdvertisingServer(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                advertise(settings, url)
                click.echo(f"rca: store {settings.db_path}; OTLP/HTTP and API on {url}", err=True)

    try:
        with _sigterm_as_interrupt():
            config = uvicorn.Config(create_app(runtime), log_level=log_level, ws="none", lifespan="off",
                                    server_header=False)
            AdvertisingServer(config).run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl+C or SIGTERM: uvicorn re-raises it once it has shut down gracefully
        pass
    finally:
        withdraw(settings)
        sock.close()
        runtime.close()


def _listen(host: str, port: int):
    """A listening socket on ``host:port`` (port 0: any free one), made here so that a taken port is a clear
    error and the advertised URL carries the real address."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=2048)


@contextmanager
def _sigterm_as_interrupt():
    """SIGTERM raises KeyboardInterrupt, as Ctrl+C does: uvicorn shuts down gracefully on either and then
    re-raises the signal, which with the default SIGTERM handler would end the process before the store
    is closed and server.json removed."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # signals can only be handled there
        yield
        return
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
