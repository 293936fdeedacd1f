"""The ``idsp`` command: one entry point, one sub-command group per concern.

Rule: this package only parses and prints; the library does the work. Modules here
import nothing heavy at the top (no pandas, great_expectations, mlflow, dvc, sklearn):
``idsp --help`` must stay fast. Exit codes: 0 ok, 1 the answer is no, 2 bad usage/input.
"""

from __future__ import annotations

import sys

import typer
from typer import exceptions as typer_errors

from idsp.cli import case as cli_case
from idsp.cli import config as cli_config
from idsp.cli import data as cli_data
from idsp.cli import deploy as cli_deploy
from idsp.cli import doctor as cli_doctor
from idsp.cli import ethics as cli_ethics
from idsp.cli import hub as cli_hub
from idsp.cli import quality as cli_quality
from idsp.cli import run as cli_run
from idsp.cli import tracking as cli_tracking
from idsp.cli._common import console_err
from idsp.defaults import VERSION as __version__
from idsp.errors import IdspError

app = typer.Typer(
    name="idsp",
    help="IDSP, the Inspecties-DataSciencePlatform: cases, data, checklists, runs, the hub.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

# Each sub-command module defines ``app`` (a Typer group) or ``register(app)`` for
# top-level commands; the table names the group each ``app`` is added as.
GROUPS = {
    "config": cli_config,
    "case": cli_case,
    "ethics": cli_ethics,
    "data": cli_data,
    "quality": cli_quality,
    "tracking": cli_tracking,
    "hub": cli_hub,
    "deploy": cli_deploy,
}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"idsp {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """IDSP, the Inspecties-DataSciencePlatform."""


for _name, _module in GROUPS.items():
    app.add_typer(_module.app, name=_name)
cli_doctor.register(app)
cli_run.register(app)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI in-process and return its exit code (used by ``main`` and the tests)."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="idsp", standalone_mode=False)
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        console_err().print("Aborted.")
        return 130
    except typer_errors.TyperException as exc:  # usage errors and the like
        # Typer raises its vendored click's ClickException here, which can show itself;
        # the base class it exports does not declare that.
        exc.show()  # type: ignore[attr-defined]
        return exc.exit_code
    except IdspError as exc:
        console_err().print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
        return exc.exit_code
    return result if isinstance(result, int) else 0


def main() -> None:
    sys.exit(run(sys.argv[1:]))
