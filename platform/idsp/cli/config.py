"""`idsp config`: show and validate the platform configuration."""

from __future__ import annotations

import typer
import yaml

from idsp.cli._common import CONFIG_OPTION, JSON_OPTION, console, load, print_json

app = typer.Typer(help="Show or validate the platform configuration (platform.yaml).", no_args_is_help=True)


@app.command("show")
def show(config: str = CONFIG_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Print the configuration in force: file, then IDSP_* overrides, then defaults."""
    data = load(config).model_dump(mode="json")
    if as_json:
        print_json(data)
    else:
        console().print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), highlight=False)


@app.command("validate")
def validate(config: str = CONFIG_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Check the configuration; exit 2 with the bad field, its value and what is allowed."""
    load(config)
    if as_json:
        print_json({"valid": True})
    else:
        console().print("configuration is valid")
