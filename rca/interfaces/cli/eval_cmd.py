"""`rca eval`: accuracy on labelled data (root-cause cases, or log templates)."""

from __future__ import annotations

import json

import click

from rca.config import Settings


@click.command("eval")
@click.argument("target", type=click.Path())
@click.argument("directory", required=False, type=click.Path())
@click.option("--store", "store_home", type=click.Path(file_okay=False),
              help="Use this RCA home (already ingested) instead of a fresh temporary store.")
@click.option("--kb-loo", is_flag=True, help="Also score with a leave-one-out knowledge base of the other cases.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_obj
def eval_(settings: Settings, target: str, directory: str | None, store_home: str | None, kb_loo: bool,
          as_json: bool) -> None:
    """Score root-cause ranking on CASES.jsonl, or templates: `rca eval templates DIR`.

    \b
    rca eval ../shared/datasets/nezha-tt-2023-01-29/cases.jsonl
    rca eval templates ../shared/datasets/loghub-2k --json
    """
    if target == "templates":
        if not directory:
            raise click.UsageError("rca eval templates DIR: give the loghub-style directory")
        from rca.interfaces.cli.templates_cmd import eval_templates

        eval_templates(directory, as_json)
        return
    if directory:
        raise click.UsageError(f"unexpected argument {directory!r}")
    from rca.interfaces.evaluating import evaluate_cases

    def progress(r) -> None:
        if not as_json:
            mark = "✓" if r.hit(1) else ("·" if r.hit(3) else "✗")
            click.echo(f"  {mark} {r.case_id:<14} truth={r.truth:<32} top3={', '.join(r.ranking[:3])}  "
                       f"({r.seconds:.2f}s)", err=True)

    result = evaluate_cases(settings, target, store_home=store_home, kb_loo=kb_loo, on_case=progress)
    if as_json:
        click.echo(json.dumps(result))
        return
    _print(result, kb_loo)


def _print(result: dict, kb_loo: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"root-cause ranking on {result['n_cases']} cases (service level)")
    for col in ("fault type", "cases", "AC@1", "AC@3", "AC@5", "Avg@5"):
        table.add_column(col, justify="right" if col != "fault type" else "left")
    for t, r in result["by_fault_type"].items():
        table.add_row(t, str(r["n_cases"]), f"{r['ac1']:.3f}", f"{r['ac3']:.3f}", f"{r['ac5']:.3f}", f"{r['avg5']:.3f}")
    table.add_row("[b]all[/b]", str(result["n_cases"]), f"[b]{result['ac1']:.3f}", f"[b]{result['ac3']:.3f}",
                  f"[b]{result['ac5']:.3f}", f"[b]{result['avg5']:.3f}")
    console = Console()
    console.print(table)
    console.print(f"{result['seconds_per_case']:.2f} s per case after ingest "
                  f"(ingest {result.get('ingest_seconds', 0):.1f} s, train {result['train_seconds']:.1f} s)")
    if kb_loo:
        kb = Table(title="knowledge base, leave-one-out")
        for col in ("metric", "without KB", "with KB"):
            kb.add_column(col)
        for k in ("ac1", "ac3", "ac5", "avg5"):
            kb.add_row(k, f"{result[k + '_without_kb']:.3f}", f"{result[k + '_with_kb']:.3f}")
        console.print(kb)
