"""`idsp tracking`: run the platform's MLflow tracking server; model cards of runs.

Rule: parse and print only. MLflow is imported inside commands (``serve`` runs it as a
child process group), so ``idsp tracking --help`` stays fast.
"""

from __future__ import annotations

import typer

from idsp.cli._common import CONFIG_OPTION, JSON_OPTION, console, console_err, load, print_json

app = typer.Typer(
    help="MLflow tracking: the server (`serve`), and model cards of runs.",
    no_args_is_help=True,
)


@app.command("serve")
def serve(
    host: str = typer.Option(None, "--host", help="Interface to bind (default: tracking.host, 127.0.0.1)."),
    port: int = typer.Option(None, "--port", help="Port (default: tracking.port, 5000)."),
    backend_store_uri: str = typer.Option(
        None,
        "--backend-store-uri",
        help="sqlite:///PATH (default: SQLite below the platform home) or postgresql://USER@HOST:PORT/DB.",
    ),
    artifacts_destination: str = typer.Option(
        None, "--artifacts-destination", help="Artefact store (default: a folder below the platform home)."
    ),
    workers: int = typer.Option(None, "--workers", help="Server workers (default: 1 on SQLite, 4 otherwise)."),
    auth: bool = typer.Option(
        False,
        "--auth",
        help=(
            "Require login (MLflow basic-auth app, default permission NO_PERMISSIONS). The admin "
            "account comes from MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD (password at "
            "least 12 characters; MLFLOW_AUTH_ADMIN_* win if set), or from --auth-config. The CSRF "
            "key is MLFLOW_FLASK_SERVER_SECRET_KEY, else a 0600 file in the secrets folder."
        ),
    ),
    auth_config: str = typer.Option(
        None, "--auth-config", help="An MLflow basic_auth.ini to use instead of the generated one."
    ),
    allowed_hosts: str = typer.Option(
        None, "--allowed-hosts", help="Host headers to accept besides localhost/private IPs."
    ),
    config: str = CONFIG_OPTION,
) -> None:
    """Run the tracking server in the foreground; Ctrl-C or SIGTERM stops it and all its workers."""
    from idsp.hub.state import HubPaths
    from idsp.tracking import server as ts

    cfg = load(config)
    spec = ts.prepare(
        cfg,
        host=host,
        port=port,
        backend_store_uri=backend_store_uri,
        artifacts_destination=artifacts_destination,
        workers=workers,
        auth=auth,
        auth_config=auth_config,
        allowed_hosts=allowed_hosts,
        hub_store=_hub_store(cfg, HubPaths.of(cfg)),
    )
    err = console_err()
    err.print(
        f"starting MLflow tracking server at {spec.url} (backend {ts.redact_uri(spec.backend_store_uri)}, "
        f"artefacts {spec.artifacts_destination}{', login required' if spec.auth else ''})",
        highlight=False,
    )

    def ready(s) -> None:
        err.print(f"tracking server ready at {s.url}", highlight=False)

    code = ts.serve(spec, on_ready=ready)
    raise typer.Exit(code)


def _hub_store(cfg, paths):
    """The hub's MLflow store, if a hub was set up in this platform home (its state folder
    exists; one we cannot look into counts as there)."""
    from idsp.tracking.server import HubStore

    try:
        present = paths.state_dir.is_dir() or paths.mlflow_admin_password.exists()
    except OSError:
        present = True
    return HubStore(paths.mlflow_dir, cfg.tracking_backend_uri()) if present else None


@app.command("model-card")
def model_card(
    run_id: str = typer.Argument(..., help="MLflow run id."),
    output: str = typer.Option(None, "--output", "-o", help="Folder to write model-card.md and .html."),
    log: bool = typer.Option(False, "--log", help="Also log both files as artefacts of the run."),
    config: str = CONFIG_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Write the model card (Markdown and HTML) of a run: checklist, data, quality, fairness."""
    from idsp.case import Case
    from idsp.errors import CaseError
    from idsp.tracking import model_card as mc

    cfg = load(config)
    try:  # inside a case project the card adds its purpose and legal basis
        case = Case.open()
    except CaseError:
        case = None
    paths = mc.write(run_id, output=output, config=cfg, case=case)
    if log:
        mc.log(run_id, paths, config=cfg)
    if as_json:
        print_json({k: str(v) for k, v in paths.items()})
    else:
        for kind, path in paths.items():
            console().print(f"{kind}: {path}", highlight=False)


@app.command("register")
def register(
    run_id: str = typer.Argument(..., help="MLflow run id of an official run."),
    name: str = typer.Argument(..., help="Registered model name."),
    artifact_path: str = typer.Option("model", "--artifact-path", help="The model's artefact path in the run."),
    config: str = CONFIG_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a run's model; refused (exit 1) unless the run is official and approved."""
    from idsp import tracking
    from idsp.case import Case
    from idsp.service import link

    case = Case.open()  # the gate is asked again for the run's case: the one here
    if link.on_hub():  # the service registers, from its own record of the run (service/models.py)
        from idsp.cli.run import _call

        body = {"run_id": run_id, "name": name, "artifact_path": artifact_path}
        version = _call(link.hub_service(), "POST", f"api/cases/{case.id}/models", json=body, timeout=120.0)
    else:
        version = tracking.register_model(run_id, name, case=case, artifact_path=artifact_path, config=load(config))
    if as_json:
        print_json(version)
    else:
        console().print(f"registered {name} version {version['version']} from run {run_id}", highlight=False)
