"""``idsp deploy``: render the platform for another target (Kubernetes, Zero to JupyterHub).

Rule: parse and print only; ``idsp.deploy`` renders, from the deployment folder
(``deploy/``). Nothing heavy is imported at the top.
"""

from __future__ import annotations

from pathlib import Path

import typer

from idsp.cli._common import CONFIG_OPTION, JSON_OPTION, console, load, print_json
from idsp.errors import UserError

app = typer.Typer(help="Render deployments from platform.yaml (Kubernetes / z2jh).", no_args_is_help=True)
render_app = typer.Typer(help="Render deployment files.", no_args_is_help=True)
app.add_typer(render_app, name="render")


def _default_chart_dir() -> Path | None:
    # A checkout keeps the shared sources beside it (../shared); see docs/hub.md.
    root = Path(__file__).resolve().parents[3]
    candidate = root.parent / "shared" / "upstream" / "z2jh"
    return candidate if (candidate / "values.schema.yaml").is_file() else None


@render_app.command("kubernetes")
def kubernetes(
    out: Path = typer.Option(..., "--out", help="Folder for values.yaml, manifests/ and SECRETS.md."),
    config: str | None = CONFIG_OPTION,
    chart_dir: Path | None = typer.Option(
        None,
        "--chart-dir",
        help="Folder with the z2jh chart's values.schema.yaml and values.yaml to validate "
        "against (default: ../shared/upstream/z2jh beside the checkout, if present).",
    ),
    deploy_dir: Path | None = typer.Option(
        None,
        "--deploy-dir",
        help="Deployment folder to render from, with kubernetes/values.yaml and "
        "kubernetes/hub_hook.py (default: the deploy/ folder of this checkout or installation).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Render z2jh Helm values and MLflow manifests; validate the values against the chart schema."""
    import yaml

    from idsp.deploy import kubernetes as k8s

    cfg = load(config)
    files = k8s.write(cfg, out, deploy_dir)
    chart = chart_dir or _default_chart_dir()
    validated = None
    if chart is not None:
        schema_file = chart / "values.schema.yaml"
        if not schema_file.is_file():
            raise UserError("no values.schema.yaml here", where=str(chart), fix="Pass the chart's jupyterhub/ folder")
        schema = yaml.safe_load(schema_file.read_text(encoding="utf-8"))
        defaults_file = chart / "values.yaml"
        defaults = yaml.safe_load(defaults_file.read_text(encoding="utf-8")) if defaults_file.is_file() else {}
        errors = k8s.validate_values(k8s.render_values(cfg, deploy_dir), schema, defaults)
        if errors:
            raise UserError(
                "the rendered values do not validate against the z2jh schema: " + "; ".join(errors[:10]),
                where=str(out / "values.yaml"),
                fix="Correct the kubernetes section of platform.yaml",
            )
        validated = str(schema_file)
    if as_json:
        print_json({"files": [str(f) for f in files], "validated_against": validated})
        return
    for f in files:
        console().print(f"wrote {f}", highlight=False)
    if validated:
        console().print(f"values.yaml is valid against {validated}", highlight=False)
    else:
        console().print("values.yaml NOT validated: no chart schema found (pass --chart-dir)", highlight=False)
