"""Small pieces every command group shares: consoles, JSON output, the loaded config."""

from __future__ import annotations

import json
import sys
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


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def load(config_path: str | None = None):
    from idsp.config import load_config

    return load_config(config_path)
