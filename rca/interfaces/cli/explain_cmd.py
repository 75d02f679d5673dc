"""`rca train` and `rca explain`: from stored telemetry to ranked root-cause hypotheses."""

from __future__ import annotations

import json

import click

from rca.config import Settings


def _time(value: str | None) -> int | None:
    from rca.timeutil import parse_time

    return None if value is None else parse_time(value)


@click.command()
@click.option("--since", help="Start of the baseline (ISO 8601, Unix seconds, or -2h). Default: all stored data.")
@click.option("--until", help="End of the baseline. Default: now.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def train(settings: Settings, since: str | None, until: str | None, as_json: bool) -> None:
    """Fit the per-operation span anomaly models on a baseline and save them under the models directory."""
    from rca.interfaces.explaining import train as run_train
    from rca.interfaces.remote import open_for_writing

    runtime = open_for_writing(settings, "train")
    try:
        info = run_train(runtime, _time(since), _time(until))
    finally:
        runtime.close()
    if as_json:
        click.echo(json.dumps(info))
    else:
        click.echo(f"trained span models for {info['n_operations']} operations "
                   f"({info['n_operations_seen']} seen) -> {info['models_dir']}")


@click.command()
@click.argument("trace_id", required=False)
@click.option("--start", help="Incident window start (ISO 8601, Unix seconds, or -15m).")
@click.option("--end", help="Incident window end.")
@click.option("--no-kb", is_flag=True, help="Do not consult the knowledge base of past incidents.")
@click.option("--json", "as_json", is_flag=True, help="Print the Explanation as JSON.")
@click.pass_obj
def explain(settings: Settings, trace_id: str | None, start: str | None, end: str | None, no_kb: bool,
            as_json: bool) -> None:
    """Why did this trace, or this incident window, go wrong? Ranked hypotheses with evidence.

    \b
    rca explain 4bf92f3577b34da6a3ce929d0e0e4736
    rca explain --start 2023-01-29T08:42:09Z --end 2023-01-29T08:45:09Z
    """
    from rca.interfaces.explaining import explain as run_explain
    from rca.interfaces.remote import RunningServer, connect, explanation_from_dict

    start_ns, end_ns = _time(start), _time(end)
    target = connect(settings)
    if isinstance(target, RunningServer):  # the server explains (and keeps the result for feedback)
        doc = target.post("/api/v1/explain", {"trace_id": trace_id, "start": start, "end": end, "use_kb": not no_kb})
        if as_json:
            click.echo(json.dumps(doc, default=str))
        else:
            render(explanation_from_dict(doc))
        return
    try:
        result = run_explain(target, trace_id=trace_id, start_ns=start_ns, end_ns=end_ns, use_kb=not no_kb)
    finally:
        target.close()
    if as_json:
        click.echo(json.dumps(result.to_dict(), default=str))
        return
    render(result)


def render(result, truth: str | None = None) -> None:
    """Hypotheses, readably: rank, service/operation, kind, role, score, summary, evidence links."""
    from rich.console import Console
    from rich.markup import escape
    from rich.panel import Panel

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)
    what = (f"trace {result.query['trace_id']}" if "trace_id" in result.query else "window "
            + _span(result.query["start"], result.query["end"]))
    console.print(f"[b]explain {result.id}[/b]  {what}  ({result.seconds:.2f} s)")
    if truth:
        console.print(f"injected root cause: [b]{escape(truth)}[/b]")
    if not result.hypotheses:
        console.print(f"[yellow]{escape(result.message or 'no clear root cause')}[/yellow]")
        return
    for h in result.hypotheses:
        head = f"#{h.rank} [b]{escape(h.service)}[/b]" + (f" / {escape(h.operation)}" if h.operation else "")
        head += f"  kind={h.kind} role={h.role} score={h.score:.2f}"
        lines = [escape(h.summary)]
        for ev in h.evidence[:6]:
            lines.append(f"  • {escape(f'[{ev.type}]')} {escape(ev.detail)}")
            if ev.link:
                lines.append(f"      [link]{escape(ev.link)}[/link]")
        style = "red" if h.role == "root_cause" and h.rank == 1 else "white"
        console.print(Panel("\n".join(lines), title=head, title_align="left", border_style=style))
    console.print(f"confirm or reject: rca feedback {result.id} --confirm RANK | --reject RANK")


def _span(start: int, end: int) -> str:
    from rca.timeutil import format_ns

    return f"{format_ns(start)} .. {format_ns(end)}"
