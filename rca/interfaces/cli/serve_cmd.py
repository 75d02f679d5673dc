"""`rca serve`: the OTLP/HTTP receiver, REST API and web UI on one port."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default=None, help="Address to listen on. Default: $RCA_HOST or 127.0.0.1.")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port. Default: $RCA_PORT or 4318 (OTLP/HTTP).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info", "debug"]), default="info",
              show_default=True)
@click.pass_obj
def serve(settings, host: str | None, port: int | None, log_level: str) -> None:
    """Receive OTLP/HTTP (protobuf and JSON, gzip) on /v1/traces, /v1/logs, /v1/metrics and serve the API.

    Point any OpenTelemetry SDK or Collector at it unchanged, e.g.
    OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318.
    """
    import uvicorn

    from rca.interfaces.api.app import create_app
    from rca.interfaces.runtime import Runtime

    settings = settings.with_(host=host or settings.host, port=settings.port if port is None else port)
    runtime = Runtime(settings)
    runtime.store  # open now: a locked or unreadable store fails here, with a clear message
    try:
        from rca.ingest.otlp_wire import warm_up

        warm_up()  # compile the protobuf trace decoder (or load it from numba's cache) before the first request
        click.echo(f"rca: store {settings.db_path}; OTLP/HTTP and API on http://{settings.host}:{settings.port}",
                   err=True)
        uvicorn.run(create_app(runtime), host=settings.host, port=settings.port, log_level=log_level,
                    ws="none", lifespan="off", server_header=False)
    finally:
        runtime.close()
