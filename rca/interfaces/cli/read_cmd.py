"""`rca trace`, `rca traces`, `rca stats`: read the store back."""

from __future__ import annotations

import json

import click

_STATUS = {0: "", 1: "ok", 2: "ERROR"}
_SEVERITY = [(21, "FATAL"), (17, "ERROR"), (13, "WARN"), (9, "INFO"), (5, "DEBUG"), (1, "TRACE")]


def _severity(n: int, text: str) -> str:
    if text:
        return text
    return next((name for floor, name in _SEVERITY if n >= floor), "")


def _console():
    """A rich console that does not cut lines when the output is piped (it wraps them in a terminal)."""
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)
    return console


def _echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.command()
@click.argument("trace_id")
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON (as GET /api/v1/traces/{id}).")
@click.pass_obj
def trace(settings, trace_id: str, as_json: bool) -> None:
    """Show one trace as a span tree (service, operation, duration, self time, status) with its logs."""
    from rca.interfaces.remote import RunningServer, connect, trace_view_from_dict
    from rca.store.trace_view import normalize_trace_id, read_trace

    target = connect(settings, read_only=True)
    if isinstance(target, RunningServer):
        doc = target.get(f"/api/v1/traces/{normalize_trace_id(trace_id)}")  # (hex: safe in a path)
        if as_json:
            _echo_json(doc)
        else:
            print_trace(trace_view_from_dict(doc))
        return
    try:
        view = read_trace(target.store, trace_id)
    finally:
        target.close()
    if as_json:
        _echo_json(view.to_dict())
    else:
        print_trace(view)


def print_trace(view) -> None:
    """A ``TraceView`` as a rich tree: spans under their parents, each span's log lines under it."""
    from rich.markup import escape
    from rich.tree import Tree

    from rca.timeutil import format_duration, format_ns

    logs_by_span: dict[str, list] = {}
    for rec in view.logs:
        logs_by_span.setdefault(rec.span_id, []).append(rec)
    children = view.children()

    def label(s) -> str:
        status = _STATUS.get(s.status_code, str(s.status_code))
        status = f" [bold red]{status}[/]" + (f" {escape(s.status_message)}" if s.status_message else "") \
            if s.status_code == 2 else (f" {status}" if status else "")
        return (f"[cyan]{escape(s.service)}[/] {escape(s.name)}  {format_duration(s.duration_ns)}"
                f" [dim](self {format_duration(view.self_time_ns[s.span_id])})[/]{status}")

    def add(node, s, depth: int = 0) -> None:
        for rec in logs_by_span.get(s.span_id, []):
            sev = _severity(rec.severity_number, rec.severity_text)
            style = "red" if rec.severity_number >= 17 else "yellow" if rec.severity_number >= 13 else "dim"
            node.add(f"[{style}]{format_ns(rec.time_ns)} {sev}[/] {escape(rec.body)}")
        for child in children.get(s.span_id, []):
            add(node.add(label(child)), child, depth + 1)

    err = " [bold red]error[/]" if any(s.status_code == 2 for s in view.spans) else ""
    tree = Tree(f"trace [bold]{view.trace_id}[/]  {format_ns(view.start_ns)}  {format_duration(view.duration_ns)}"
                f"  {len(view.spans)} spans, {len(view.logs)} logs{err}")
    for root in view.roots():
        add(tree.add(label(root)), root)
    orphans = [rec for rec in view.logs if rec.span_id not in {s.span_id for s in view.spans}]
    for rec in orphans:
        tree.add(f"[dim]{format_ns(rec.time_ns)}[/] {escape(rec.body)}")
    _console().print(tree)


@click.command()
@click.option("--service", help="Only traces that touch this service.")
@click.option("--since", help="Start of the window: ISO 8601, Unix seconds, or '-15m'.")
@click.option("--until", help="End of the window (same forms).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as GET /api/v1/traces).")
@click.pass_obj
def traces(settings, service: str | None, since: str | None, until: str | None, limit: int, as_json: bool) -> None:
    """List traces, newest first: root operation, duration, span count, error flag."""
    from rich.table import Table

    from rca.errors import InvalidInput
    from rca.interfaces.api.params import records
    from rca.interfaces.remote import here_or_there
    from rca.timeutil import format_duration, format_ns, parse_time

    start_ns = parse_time(since) if since else None
    end_ns = parse_time(until) if until else None
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        raise InvalidInput("--until must be after --since")
    rows = here_or_there(
        settings,
        lambda runtime: records(runtime.store.list_traces(service=service, start_ns=start_ns, end_ns=end_ns,
                                                          limit=limit)),
        lambda server: server.get("/api/v1/traces", service=service or None, start=since or None, end=until or None,
                                  limit=limit)["traces"],
        read_only=True)
    if as_json:
        _echo_json({"traces": rows, "n_traces": len(rows)})
        return
    if not rows:
        click.echo("no traces in that window" if (since or until or service) else "no traces stored yet")
        return
    table = Table("trace id", "start", "root", "duration", "spans", "error")
    for r in rows:
        table.add_row(r["trace_id"], format_ns(r["start_ns"]), f"{r['root_service']}: {r['root_operation']}",
                      format_duration(r["duration_ns"]), str(r["n_spans"]), "[bold red]yes[/]" if r["error"] else "")
    _console().print(table)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as GET /api/v1/stats).")
@click.pass_obj
def stats(settings, as_json: bool) -> None:
    """Summarize the store: counts per signal, time range, services."""
    from rich.table import Table

    from rca.interfaces.api.params import records
    from rca.interfaces.remote import here_or_there
    from rca.timeutil import format_ns

    summary, services = here_or_there(
        settings, lambda runtime: (runtime.store.stats(), records(runtime.store.services())),
        lambda server: (server.get("/api/v1/stats"), server.get("/api/v1/services")["services"]), read_only=True)
    if as_json:
        _echo_json({**summary, "services": services})
        return
    console = _console()
    console.print(f"store {summary['path']}")
    console.print(f"{summary['n_spans']} spans in {summary['n_traces']} traces, {summary['n_logs']} logs, "
                  f"{summary['n_metric_points']} metric points, {summary['n_services']} services")
    if summary["first_ns"] is not None:
        console.print(f"from {format_ns(summary['first_ns'])} to {format_ns(summary['last_ns'])}")
    if services:
        table = Table("service", "spans", "logs", "metric points")
        for r in services:
            table.add_row(r["service"], str(r["n_spans"]), str(r["n_logs"]), str(r["n_metric_points"]))
        console.print(table)
