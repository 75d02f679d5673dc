"""`rca` command line. Commands live in small modules and are imported only when used,
so `rca --help` stays fast (no torch, FAISS or model)."""

from __future__ import annotations

import importlib
import sys

import click

from rca.config import Settings
from rca.errors import RcaError

# name -> "module:attribute"; each module imports heavy parts inside its functions.
COMMANDS: dict[str, str] = {
    "serve": "rca.interfaces.cli.serve_cmd:serve",
    "ingest": "rca.interfaces.cli.ingest_cmd:ingest",
    "trace": "rca.interfaces.cli.read_cmd:trace",
    "traces": "rca.interfaces.cli.read_cmd:traces",
    "stats": "rca.interfaces.cli.read_cmd:stats",
    "templates": "rca.interfaces.cli.templates_cmd:templates",
    "train": "rca.interfaces.cli.explain_cmd:train",
    "explain": "rca.interfaces.cli.explain_cmd:explain",
    "eval": "rca.interfaces.cli.eval_cmd:eval_",
    "kb": "rca.interfaces.cli.kb_cmd:kb",
    "feedback": "rca.interfaces.cli.kb_cmd:feedback",
    "simulate": "rca.interfaces.cli.simulate_cmd:simulate",
    "demo": "rca.interfaces.cli.demo_cmd:demo",
    "timeline": "rca.interfaces.cli.timeline_cmd:timeline",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(file_okay=False), envvar="RCA_HOME",
              help="Data directory (store, models, index). Default: $RCA_HOME or ~/.local/share/rca.")
@click.version_option(package_name="rca", prog_name="rca")
@click.pass_context
def cli(ctx: click.Context, home: str | None) -> None:
    """rca: root-cause analysis for microservices from OpenTelemetry traces, logs and metrics."""
    settings = Settings.from_env()
    if home:
        from pathlib import Path

        settings = settings.with_(home=Path(home).expanduser())
    ctx.obj = settings


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="rca", standalone_mode=False)
    except RcaError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
