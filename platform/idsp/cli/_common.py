"""Small pieces every command group shares: consoles, JSON output, the loaded config."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import typer
from rich.console import Console

JSON_OPTION = typer.Option(False, "--json", help="Print the result as JSON for scripts.")
CONFIG_OPTION = typer.Option(
    None, "--config", "-c", help="platform.yaml to use (default: $IDSP_CONFIG, else built-in)."
)


@cache
def console() -> Console:
    # No file given: rich looks up sys.stdout at every write, so redirection still works.
    return Console()


@cache
def console_err() -> Console:
    return Console(stderr=True)


@contextmanager
def spinner(enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A rich status line on stderr for slow steps: ``with spinner(not as_json) as step:
    step("reading x.csv")``. Silent for --json and when stderr is not a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _msg: None
        return
    with console_err().status("working ...") as status:
        yield lambda msg: status.update(msg + " ...")


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def load(config_path: str | None = None):
    from idsp.config import load_config

    return load_config(config_path)
