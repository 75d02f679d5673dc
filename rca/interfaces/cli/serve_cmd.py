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

    from rca.errors import StoreError
    from rca.ingest.otlp_wire import warm_up
    from rca.interfaces.api.app import create_app
    from rca.interfaces.remote import advertise, find_server, is_lock_error, reachable_url, withdraw
    from rca.interfaces.runtime import Runtime

    # compile the protobuf trace decoder (or load it from numba's cache, ~1 s) before the first request, and
    # before the store is locked: a first compile takes 20-60 s, during which the CLI could not yet use this server
    warm_up()
    settings = settings.with_(host=host or settings.host, port=settings.port if port is None else port)
    runtime = Runtime(settings)
    try:
        runtime.store  # open now: a locked or unreadable store fails here, with a clear message
    except StoreError as exc:
        other = find_server(settings, exc) if is_lock_error(exc) else None
        if other is None:
            raise
        raise StoreError(f"{other.busy_head()}: it already serves this home", {"url": other.url}) from exc

    def started(bound_port: int) -> None:
        advertise(settings, reachable_url(settings.host, bound_port))
        click.echo(f"rca: store {settings.db_path}; OTLP/HTTP and API on http://{settings.host}:{bound_port}",
                   err=True)

    class AdvertisingServer(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                started(self.servers[0].sockets[0].getsockname()[1])

    try:
        with _sigterm_as_interrupt():
            config = uvicorn.Config(create_app(runtime), host=settings.host, port=settings.port,
                                    log_level=log_level, ws="none", lifespan="off", server_header=False)
            server = AdvertisingServer(config)
            try:
                server.run()
            except KeyboardInterrupt:  # the signal uvicorn re-raises once it has shut down gracefully
                pass
        if not server.started:
            raise SystemExit(1)  # uvicorn has logged why (e.g. the port is taken)
    finally:
        withdraw(settings)
        runtime.close()


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
