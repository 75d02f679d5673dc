"""`rca kb ...` (the incident knowledge base) and `rca feedback` (confirm/reject a hypothesis).

While `rca serve` holds the store, every command but `kb reindex` goes through its API."""

from __future__ import annotations

import json
from pathlib import Path

import click

from rca.config import Settings
from rca.interfaces.remote import here_or_there


def _echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _console():
    from rich.console import Console

    return Console()


def _table(rows: list[dict], similarity: bool = False):
    from rich.table import Table

    table = Table(show_lines=False)
    for col in (["similarity"] if similarity else []) + ["id"]:
        table.add_column(col, no_wrap=True)
    for col in ("title", "root cause", "fix", "created"):
        table.add_column(col, overflow="fold")
    for r in rows:
        cause = "/".join(p for p in (r["root_cause_service"], r["root_cause_operation"]) if p)
        cells = [r["id"], r["title"], f"{cause} ({r['root_cause_kind']})" if cause else "", r["resolution"],
                 r["created_at"]]
        table.add_row(*([f"{r['similarity']:.3f}"] if similarity else []), *cells)
    return table


@click.group()
def kb() -> None:
    """The knowledge base of past incidents: add, import, list, show, delete, search, reindex."""


@kb.command("add")
@click.option("--file", "file_", type=click.Path(dir_okay=False, path_type=Path),
              help="JSON or YAML file with one incident (object) or several (list).")
@click.option("--id", "inc_id", help="Incident id (default: generated).")
@click.option("--title", help="Short title.")
@click.option("--summary", help="Symptoms as a person would describe them.")
@click.option("--service", help="Root-cause service.")
@click.option("--operation", help="Root-cause operation.")
@click.option("--kind", type=click.Choice(["latency", "error", "resource", "network", "unknown"]),
              help="Root-cause kind.")
@click.option("--fix", help="Resolution / fix.")
@click.option("--link", "links", multiple=True, help="Issue, PR or runbook URL (repeatable).")
@click.option("--created-at", help="RFC 3339 time (default: now).")
@click.option("--resolved-at", help="RFC 3339 time.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_obj
def add(settings: Settings, file_, inc_id, title, summary, service, operation, kind, fix, links, created_at,
        resolved_at, as_json) -> None:
    """Record a past incident from flags or from a JSON/YAML file."""
    from rca.errors import InvalidInput
    from rca.kb.incidents import incident_from_dict, read_incident_file

    flags = {"id": inc_id, "title": title, "summary": summary, "root_cause_service": service,
             "root_cause_operation": operation, "root_cause_kind": kind, "resolution": fix,
             "links": list(links) or None, "created_at": created_at, "resolved_at": resolved_at}
    given = {k: v for k, v in flags.items() if v is not None}
    if file_ is not None:
        if given:
            raise InvalidInput("give either --file or incident flags, not both")
        incidents = read_incident_file(file_)
    else:
        incidents = [incident_from_dict(given)]
    def add_here(runtime) -> list[dict]:
        runtime.kb.add(incidents)
        return [i.to_dict() for i in incidents]

    added = here_or_there(settings, add_here,
                          lambda server: server.post("/api/v1/incidents", [i.to_dict() for i in incidents])["incidents"])
    if as_json:
        _echo_json(added)
    else:
        for i in added:
            click.echo(f"added {i['id']}: {i['title']}")


@kb.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def import_(settings: Settings, file: Path, as_json: bool) -> None:
    """Import incidents from a JSON-lines file (one incident per line; all or nothing)."""
    from rca.kb.incidents import read_jsonl

    incidents = read_jsonl(file)
    here_or_there(settings, lambda runtime: runtime.kb.add(incidents),
                  lambda server: server.post("/api/v1/incidents", [i.to_dict() for i in incidents]))
    if as_json:
        _echo_json({"imported": len(incidents), "ids": [i.id for i in incidents]})
    else:
        click.echo(f"imported {len(incidents)} incident(s) from {file}")


@kb.command("list")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def list_(settings: Settings, limit: int, as_json: bool) -> None:
    """List incidents, newest first."""
    rows = here_or_there(settings, lambda runtime: [i.to_dict() for i in runtime.kb.list(limit=limit)],
                         lambda server: server.get("/api/v1/incidents", limit=limit)["incidents"])
    if as_json:
        _echo_json(rows)
    elif not rows:
        click.echo("no incidents")
    else:
        _console().print(_table(rows))


@kb.command("show")
@click.argument("incident_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def show(settings: Settings, incident_id: str, as_json: bool) -> None:
    """Show one incident."""
    from rca.interfaces.remote import segment

    inc = here_or_there(settings, lambda runtime: runtime.kb.get(incident_id).to_dict(),
                        lambda server: server.get(f"/api/v1/incidents/{segment(incident_id)}"))
    if as_json:
        _echo_json(inc)
        return
    for key, value in inc.items():
        if value not in ("", [], {}, None):
            click.echo(f"{key}: {json.dumps(value) if isinstance(value, (list, dict)) else value}")


@kb.command("delete")
@click.argument("incident_id")
@click.pass_obj
def delete(settings: Settings, incident_id: str) -> None:
    """Delete one incident (store and index)."""
    from rca.interfaces.remote import segment

    here_or_there(settings, lambda runtime: runtime.kb.delete(incident_id),
                  lambda server: server.delete(f"/api/v1/incidents/{segment(incident_id)}"))
    click.echo(f"deleted {incident_id}")


@kb.command("search")
@click.argument("text")
@click.option("-k", "k", type=int, default=5, show_default=True, help="How many incidents to return (1-100).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def search(settings: Settings, text: str, k: int, as_json: bool) -> None:
    """Find the past incidents most similar to TEXT."""
    rows = here_or_there(settings, lambda runtime: [h.to_dict() for h in runtime.kb.search(text, k)],
                         lambda server: server.get("/api/v1/incidents/search", q=text, k=k)["results"])
    if as_json:
        _echo_json(rows)
    elif not rows:
        click.echo("no incidents")
    else:
        _console().print(_table(rows, similarity=True))


@kb.command("reindex")
@click.option("--reembed", is_flag=True, help="Re-embed every incident (default: only those from another model).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def reindex(settings: Settings, reembed: bool, as_json: bool) -> None:
    """Rebuild the FAISS index from the store."""
    from rca.interfaces.remote import open_for_writing

    runtime = open_for_writing(settings, "kb reindex" + (" --reembed" if reembed else ""))
    try:
        info = runtime.kb.reindex(reembed=reembed)
    finally:
        runtime.close()
    if as_json:
        _echo_json(info)
    else:
        click.echo(f"indexed {info['n_incidents']} incident(s) ({info['kind']}, re-embedded {info['n_reembedded']})"
                   f" -> {info['index_path']}")


@click.command()
@click.argument("explain_id")
@click.option("--confirm", type=int, help="Rank of the hypothesis that was the root cause.")
@click.option("--reject", type=int, help="Rank of a hypothesis that was wrong.")
@click.option("--fix", help="What fixed it (with --confirm).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def feedback(settings: Settings, explain_id: str, confirm, reject, fix, as_json: bool) -> None:
    """Confirm (--confirm RANK [--fix TEXT]) or reject (--reject RANK) a hypothesis of an explain result."""
    from rca.interfaces.remote import segment
    from rca.kb.feedback import record_feedback

    body = {k: v for k, v in (("confirm", confirm), ("reject", reject), ("fix", fix)) if v is not None}
    out = here_or_there(settings,
                        lambda runtime: record_feedback(runtime.kb, explain_id, confirm=confirm, reject=reject, fix=fix),
                        lambda server: server.post(f"/api/v1/explain/{segment(explain_id)}/feedback", body))
    if as_json:
        _echo_json(out)
    elif confirm is not None:
        click.echo(f"confirmed rank {confirm} of {explain_id}: incident {out['incident']['id']} recorded")
    else:
        click.echo(f"rejected rank {reject} of {explain_id} ({out['service']}, {out['kind']})")
