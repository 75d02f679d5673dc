"""`rca simulate`: generate a labelled fault suite from a topology (files or OTLP/HTTP)."""

from __future__ import annotations

import json
import re

import click

from rca.errors import InvalidInput

_DUR = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}


def parse_duration(text: str, what: str) -> int:
    """'90s', '2m', '1h', '45' (seconds) -> whole seconds."""
    m = _DUR.match(text.strip())
    if not m:
        raise InvalidInput(f"{what}: {text!r} is not a duration such as 90s, 2m or 1h")
    return int(round(float(m.group(1)) * _UNIT_S[m.group(2)]))


@click.command()
@click.option("--topology", default="shop", show_default=True,
              help="Built-in topology (shop, ridehail) or a path to your own YAML.")
@click.option("--faults", "n_faults", type=int, default=10, show_default=True,
              help="Number of fault cases; kinds are cycled so every kind appears.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same bytes.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Directory for traces/logs/metrics.jsonl.gz, cases.jsonl and README.md.")
@click.option("--endpoint", default=None, help="Send over OTLP/HTTP protobuf instead, e.g. http://127.0.0.1:4318.")
@click.option("--rate", type=float, default=10.0, show_default=True, help="Mean entry requests per second.")
@click.option("--duration", default="2m", show_default=True, help="How long each fault lasts.")
@click.option("--baseline", default="10m", show_default=True, help="Normal traffic before the first case.")
@click.option("--gap", default="2m", show_default=True, help="Recovery time after each fault.")
@click.option("--start", default="2024-05-01T08:00:00Z", show_default=True, help="Simulated start time (UTC).")
@click.option("--kinds", default=None, help="Comma-separated fault kinds to use (default: all).")
@click.option("--via-sdk", is_flag=True, help="Write the files through the OpenTelemetry SDK (slower).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def simulate(n_faults, seed, out_dir, endpoint, rate, duration, baseline, gap, start, kinds, via_sdk, as_json,
             topology) -> None:
    """Simulate a production-like system and inject labelled faults.

    Writes a suite that `rca ingest` and `rca eval DIR/cases.jsonl` read, or sends it to a running
    `rca serve` with --endpoint.
    """
    from rca.simulate import run_suite

    if out_dir is None and endpoint is None:
        raise InvalidInput("give --out DIR or --endpoint URL")
    kind_list = [k.strip() for k in kinds.split(",") if k.strip()] if kinds else None
    result = run_suite(topology, n_faults, seed, out_dir, rate=rate, baseline_s=parse_duration(baseline, "--baseline"),
                       fault_s=parse_duration(duration, "--duration"), gap_s=parse_duration(gap, "--gap"),
                       start=start, kinds=kind_list, endpoint=endpoint, via_sdk=via_sdk)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{len(result.cases)} cases")
    for col in ("case", "inject_time", "fault", "root cause"):
        table.add_column(col)
    for c in result.cases:
        table.add_row(c["case_id"], c["inject_time"], c["fault_type"], f"{c['root_cause']['service']} "
                      f"({c['root_cause']['pod']})")
    if result.cases:
        console.print(table)
    counts = ", ".join(f"{v['items']} {k}" for k, v in result.counts.items())
    where = f"to {endpoint}" if endpoint else f"in {out_dir}"
    console.print(f"simulated {counts} {where} in {result.seconds:.1f} s")
