"""`rca timeline`: one time-ordered replay of a trace or a window across services, and the state at an instant."""

from __future__ import annotations

import json

import click

_KIND_STYLE = {"span_start": "dim", "span_end": "dim", "log": "", "metric_shift": "magenta", "anomaly": "bold red"}


def _metric_line(values: dict) -> str:
    return ", ".join(f"{name.removeprefix('k8s.pod.')}={v:.4g}" for name, v in values.items())


def _print(doc: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    from rca.interfaces.cli.read_cmd import _console
    from rca.timeutil import format_duration

    console = _console()
    q = doc["query"]
    what = f"trace {q['trace_id']}" if q["trace_id"] else "window"
    console.print(f"{what} {doc['start']} .. {doc['end']}  {doc['n_events']} events"
                  + (f" of {doc['n_events_total']}" if doc["truncated"] else ""))
    at = doc["at"]
    table = Table("time", "service", "kind", "detail")
    marked = at is None
    for ev in doc["events"]:
        if not marked and ev["time_ns"] > at["time_ns"]:
            table.add_row(f"[bold cyan]{at['time']}[/]", "", "[bold cyan]at[/]", "[bold cyan]-- state below --[/]")
            marked = True
        style = "red" if ev["flagged"] and ev["kind"] == "log" else _KIND_STYLE[ev["kind"]]
        detail = escape(ev["detail"])
        table.add_row(ev["time"], escape(ev["service"]), ev["kind"], f"[{style}]{detail}[/]" if style else detail)
    if not marked:
        table.add_row(f"[bold cyan]{at['time']}[/]", "", "[bold cyan]at[/]", "[bold cyan]-- state below --[/]")
    if doc["events"] or at is not None:
        console.print(table)
    else:
        console.print("no events in that range")
    if doc["note"]:
        console.print(f"[yellow]{escape(doc['note'])}[/]")
    if at is None:
        return
    console.print(f"\n[bold]state at {at['time']}[/]")
    services = sorted(set(at["in_flight"]) | set(at["last_logs"]) | set(at["metrics"]))
    if not services:
        console.print("nothing running, logged or measured in the five minutes before")
    for service in services:
        n = at["n_in_flight"].get(service, 0)
        console.print(f"[cyan]{escape(service)}[/]: {n} span{'s' if n != 1 else ''} in flight")
        for span in at["in_flight"].get(service, []):
            console.print(f"  {escape(span['name'] or '')} running {format_duration(span['elapsed_ns'])}"
                          f" [dim]{span['trace_id']} {span['span_id']}[/]")
        for rec in at["last_logs"].get(service, []):
            style = "red" if rec["severity_number"] >= 17 else "yellow" if rec["severity_number"] >= 13 else "dim"
            console.print(f"  [{style}]{rec['time']} {rec['severity']}[/] {escape(rec['body'] or '')}")
        if service in at["metrics"]:
            console.print(f"  [dim]{escape(_metric_line(at['metrics'][service]))}[/]")


@click.command()
@click.argument("trace_id", required=False)
@click.option("--start", help="Start of the window: ISO 8601, Unix seconds, or '-15m'.")
@click.option("--end", help="End of the window (same forms).")
@click.option("--service", "services", multiple=True, help="Only this service (repeatable).")
@click.option("--at", "at", help="Also show the state at this instant: spans in flight, last logs, metric values.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=500, show_default=True,
              help="At most this many events (anomalies, metric shifts and error logs kept first).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as GET /api/v1/timeline).")
@click.pass_obj
def timeline(settings, trace_id: str | None, start: str | None, end: str | None, services: tuple[str, ...],
             at: str | None, limit: int, as_json: bool) -> None:
    """Replay a trace (TRACE_ID) or a window (--start/--end) in time order across services: span starts
    and ends, log lines with templates, metric shifts and anomaly flags."""
    from rca.errors import InvalidInput
    from rca.interfaces.remote import here_or_there
    from rca.localize.timeline import build_timeline
    from rca.timeutil import parse_time

    def when(value: str | None, option: str) -> int | None:
        if value is None:
            return None
        try:
            return parse_time(value)
        except InvalidInput as exc:
            raise InvalidInput(f"{option}: {exc.message}", {"parameter": option}) from None

    start_ns, end_ns, at_ns = when(start, "--start"), when(end, "--end"), when(at, "--at")
    doc = here_or_there(
        settings,
        lambda runtime: build_timeline(runtime.store, runtime.templates, trace_id=trace_id, start_ns=start_ns,
                                       end_ns=end_ns, services=list(services) or None, at_ns=at_ns,
                                       limit=limit).to_dict(),
        lambda server: server.get("/api/v1/timeline", trace_id=trace_id, start=start, end=end,
                                  service=list(services) or None, at=at, limit=limit),
        read_only=True)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
        return
    _print(doc)
