"""``idsp hub``: run the multi-user hub on this server.

Rule: parse and print only; ``idsp.hub.supervisor`` does the work and is imported inside
the commands, so ``idsp hub --help`` imports neither JupyterHub nor MLflow.
"""

from __future__ import annotations

import typer

from idsp.cli._common import CONFIG_OPTION, console, load

app = typer.Typer(
    help="The multi-user hub: JupyterHub, NativeAuthenticator, MLflow, idle culling.",
    no_args_is_help=True,
)


@app.command("up")
def up(
    config: str | None = CONFIG_OPTION,
    dev: bool = typer.Option(
        False, "--dev", help="Development only: allow the test (dummy) authenticator."
    ),
) -> None:
    """Start the hub in the foreground; prints its URL and where the admin password is."""
    from idsp.hub.supervisor import up as hub_up

    cfg = load(config)
    code = hub_up(cfg, dev=dev, config_path=config, echo=lambda s: console().print(s, highlight=False, soft_wrap=True))
    raise typer.Exit(code)


@app.command("down")
def down(
    config: str | None = CONFIG_OPTION,
    servers: bool = typer.Option(
        False, "--servers", help="Also stop every user server (they survive a plain restart)."
    ),
) -> None:
    """Stop a running `idsp hub up` and the services it started."""
    from idsp.hub.supervisor import down as hub_down

    report = hub_down(load(config), servers=servers)
    console().print(report.summary(), highlight=False, soft_wrap=True)
    if report.hub == "still running":
        raise typer.Exit(1)
