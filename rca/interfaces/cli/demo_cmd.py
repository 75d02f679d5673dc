"""`rca demo`: the whole pipeline in one command, on a simulated incident with a known root cause."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import click

from rca.config import Settings

DEMO_FAULT = {"kind": "db_lock", "service": "postgres"}


def run_demo(settings: Settings, workdir: Path, topology: str = "shop", fault: dict | None = None, seed: int = 7,
             rate: float = 8.0, echo=click.echo) -> tuple[object, dict, dict]:
    """Simulate baseline traffic + one incident, ingest, train, explain the window.

    Returns (explanation, case, timings). The store lives under ``settings.home``.
    """
    from rca.interfaces.cli.ingest_cmd import ingest_paths
    from rca.interfaces.explaining import explain, train
    from rca.interfaces.runtime import Runtime
    from rca.simulate import simulate_suite
    from rca.timeutil import parse_time

    timings = {}
    t0 = time.perf_counter()
    suite_dir = workdir / "suite"
    cases = simulate_suite(topology, 1, seed, suite_dir, rate=rate, baseline_s=480, fault_s=120, gap_s=30,
                           faults=[fault or DEMO_FAULT])
    case = cases[0]
    timings["simulate"] = time.perf_counter() - t0
    echo(f"simulated {topology}: 8 min of baseline traffic + 1 incident ({timings['simulate']:.1f} s)")
    runtime = Runtime(settings)
    try:
        t0 = time.perf_counter()
        res = ingest_paths(runtime, [suite_dir])
        timings["ingest"] = time.perf_counter() - t0
        s = res["stored"]
        echo(f"ingested {s['spans']} spans, {s['logs']} log records, {s['metrics']} metric points "
             f"into {settings.db_path} ({timings['ingest']:.1f} s)")
        t0 = time.perf_counter()
        info = train(runtime)
        timings["train"] = time.perf_counter() - t0
        echo(f"trained span models for {info['n_operations']} operations ({timings['train']:.1f} s)")
        t0 = time.perf_counter()
        result = explain(runtime, start_ns=parse_time(case["window"]["start"]), end_ns=parse_time(case["window"]["end"]))
        timings["explain"] = time.perf_counter() - t0
    finally:
        runtime.close()
    return result, case, timings


@click.command()
@click.option("--serve", is_flag=True, help="Keep the API up afterwards so the evidence links can be opened.")
@click.option("--port", type=int, default=None, help="Port for --serve (default from settings: 4318).")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation and the injected truth as JSON.")
@click.pass_obj
def demo(settings: Settings, serve: bool, port: int | None, as_json: bool) -> None:
    """Simulate a shop with an injected fault, ingest, train, explain, and show the answer next to the truth."""
    from rca.interfaces.cli.explain_cmd import render

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rca-demo-") as tmp:
        home = Path(tmp) / "home" if not serve else Path(tempfile.mkdtemp(prefix="rca-demo-home-"))
        demo_settings = settings.with_(home=home)
        echo = (lambda *a, **k: None) if as_json else click.echo
        result, case, timings = run_demo(demo_settings, Path(tmp), echo=echo)
    truth = case["root_cause"]["service"]
    total = time.perf_counter() - started
    if as_json:
        click.echo(json.dumps({"explanation": result.to_dict(), "case": case, "seconds": total, **timings}))
    else:
        render(result, truth=f"{truth} ({case['fault_type']})")
        top = result.hypotheses[0].service if result.hypotheses else "(none)"
        verdict = "matches" if top == truth else "does NOT match"
        click.echo(f"top-1 hypothesis: {top} — {verdict} the injected root cause {truth}. "
                   f"Demo took {total:.1f} s.")
    if serve:
        import uvicorn

        from rca.interfaces.api.app import create_app
        from rca.interfaces.runtime import Runtime

        port = port or demo_settings.port
        click.echo(f"serving the demo store on http://{demo_settings.host}:{port} (links above are relative to it; "
                   f"Ctrl-C to stop)")
        uvicorn.run(create_app(Runtime(demo_settings)), host=demo_settings.host, port=port, log_level="warning")
