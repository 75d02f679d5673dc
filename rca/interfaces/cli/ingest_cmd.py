"""`rca ingest PATH...`: load telemetry files and directories into the store."""

from __future__ import annotations

import sys

import click

from rca.config import Settings

FLUSH_ROWS = 100_000


def ingest_paths(runtime, paths, progress: bool = False, on_problem=None) -> dict:
    """Ingest files and directories (``find_files``) into ``runtime``'s store; see ``ingest_files``."""
    from rca.ingest.files import find_files

    return ingest_files(runtime, find_files(paths), progress, on_problem)


def ingest_files(runtime, files, progress: bool = False, on_problem=None) -> dict:
    """Ingest telemetry files into ``runtime``'s store; returns counts, rejected counts and problems."""
    from rca.ingest.batch import Batch
    from rca.ingest.files import read_file
    from rca.interfaces.ingestion import store_batch

    total_bytes = sum(f.stat().st_size for f in files)
    stored = {"spans": 0, "logs": 0, "metrics": 0}
    rejected = {"spans": 0, "logs": 0, "metrics": 0}
    problems: list = []
    pending = Batch()

    def flush() -> None:
        nonlocal pending
        for k, v in store_batch(runtime, pending).items():
            stored[k] += v
        pending = Batch()

    bar = None
    if progress:
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                       transient=True)
        bar.start()
        task = bar.add_task("ingesting", total=total_bytes)
    done_bytes = 0
    try:
        for f in files:
            if bar:
                bar.update(task, description=f"ingesting {f.name}")
            n_before = len(problems)
            for batch, consumed in read_file(f, problems):
                for k, v in batch.rejected.items():
                    rejected[k] += v
                batch.errors = []
                pending.extend(batch)
                if sum(pending.counts().values()) >= FLUSH_ROWS:
                    flush()
                if bar:
                    bar.update(task, completed=done_bytes + min(consumed, f.stat().st_size))
            if on_problem:
                for p in problems[n_before:]:
                    on_problem(p)
            done_bytes += f.stat().st_size
        flush()
    finally:
        if bar:
            bar.stop()
    return {"files": len(files), "stored": stored, "rejected": rejected, "problems": [str(p) for p in problems]}


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def ingest(settings: Settings, paths: tuple[str, ...], as_json: bool) -> None:
    """Load OTLP JSON lines (.jsonl[.gz]), OTLP protobuf files and Jaeger JSON into the store."""
    import json

    from rca.ingest.files import find_files
    from rca.interfaces.remote import open_for_writing

    files = find_files(list(paths))  # a missing path is reported before the store is opened
    runtime = open_for_writing(settings, "ingest", "send telemetry to it over OTLP/HTTP "
                               "(POST {url}/v1/traces, /v1/logs, /v1/metrics)")
    try:
        shown = 0

        def report(problem) -> None:
            nonlocal shown
            shown += 1
            if shown <= 50:
                click.echo(f"skipped {problem}", err=True)

        result = ingest_files(runtime, files, progress=sys.stderr.isatty() and not as_json, on_problem=report)
    finally:
        runtime.close()
    if shown > 50:
        click.echo(f"... and {shown - 50} more problems", err=True)
    if as_json:
        click.echo(json.dumps(result))
        return
    s, r = result["stored"], result["rejected"]
    click.echo(f"ingested {result['files']} files: {s['spans']} spans, {s['logs']} log records, "
               f"{s['metrics']} metric points")
    if any(r.values()) or result["problems"]:
        click.echo(f"rejected: {r['spans']} spans, {r['logs']} log records, {r['metrics']} metric points; "
                   f"{len(result['problems'])} problems (listed above)")
