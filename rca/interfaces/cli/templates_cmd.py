"""`rca templates`: log templates of a window with counts and new/rare/error flags;
``eval_templates`` prints the loghub accuracy table for `rca eval templates`."""

from __future__ import annotations

import json

import click


def _console():
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=200)
    return console


@click.command()
@click.option("--service", "-s", default=None, help="Only logs of this service.")
@click.option("--since", default=None, help="Window start: ISO 8601 (2023-01-29T08:42:09Z) or Unix seconds.")
@click.option("--until", default=None, help="Window end (exclusive): ISO 8601 or Unix seconds.")
@click.option("--limit", "-n", default=50, show_default=True, type=click.IntRange(min=1),
              help="Show at most this many templates.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_obj
def templates(settings, service: str | None, since: str | None, until: str | None, limit: int, as_json: bool) -> None:
    """Log templates in a window, most frequent first, flagged NEW (not seen before the
    window), RARE (a few lines) and ERROR (error-level lines or error-like text)."""
    from rca.interfaces.remote import here_or_there, template_report_from_dict
    from rca.templates.report import summarize_templates
    from rca.timeutil import parse_time

    start_ns = parse_time(since) if since is not None else None
    end_ns = parse_time(until) if until is not None else None
    report = here_or_there(
        settings, lambda runtime: summarize_templates(runtime.store, runtime.templates, service, start_ns, end_ns, limit),
        lambda server: template_report_from_dict(server.get("/api/v1/templates", service=service, start=since,
                                                            end=until, limit=limit)),
        read_only=True)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    _print_report(report)


def _print_report(report) -> None:
    from rich.markup import escape
    from rich.table import Table

    from rca.timeutil import format_ns

    console = _console()
    if not report.rows:
        console.print("no templated log lines in this window")
        return
    table = Table(title=f"{report.n_templates} templates, {report.n_lines} lines"
                  + (f" ({escape(report.service)})" if report.service else ""))
    table.add_column("id", justify="right")
    table.add_column("count", justify="right")
    table.add_column("first seen")
    table.add_column("flags")
    table.add_column("template", overflow="fold")
    for r in report.rows:
        flags = " ".join(f for f, on in (("NEW", r.new), ("RARE", r.rare), ("ERROR", r.error)) if on)
        style = "red" if r.error else ("yellow" if r.new else None)
        table.add_row(str(r.template_id), str(r.count), format_ns(r.first_seen_ns), flags,
                      escape(r.template), style=style)
    console.print(table)


def eval_templates(directory: str, as_json: bool) -> None:
    """Print GA/PA per loghub system (ours next to plain drain3) as a table or JSON."""
    from rca.templates.evaluation import evaluate_loghub

    result = evaluate_loghub(directory)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    from rich.table import Table

    table = Table(title="Log template accuracy (loghub-2k): rca vs drain3 default")
    for name in ("system", "lines", "GA rca", "GA drain3", "PA rca", "PA drain3"):
        table.add_column(name, justify="left" if name == "system" else "right")
    rows = list(result["systems"].items()) + [("mean", result["mean"])]
    for name, r in rows:
        table.add_row(name, str(r["n_lines"]), f"{r['ga']:.3f}", f"{r['ga_drain3_default']:.3f}",
                      f"{r['pa']:.3f}", f"{r['pa_drain3_default']:.3f}", end_section=name == rows[-2][0])
    _console().print(table)
