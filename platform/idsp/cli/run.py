"""``idsp run [STAGE] --purpose gebruik|ontwikkeling``: an official run, made by the platform.

Rule: this command decides nothing. It sends the case's committed HEAD to the platform
service, which checks the gate on that commit and has its runner carry it out; a tree with
changes that are not committed is refused here first, naming the paths (the runner never
sees them, so running would not run what is on screen). It then shows the run's lines as they
come, the MLflow link and the end, and exits 0 when the run finished, 1 when the gate refused
it or it failed. Off the hub there is no platform to ask: it says so.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import typer

from idsp.cli._common import JSON_OPTION, console, console_err, print_json
from idsp.errors import GateRefused, Refused, UserError

PURPOSES = ("gebruik", "ontwikkeling")
POLL_SECONDS = 0.5


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise UserError(f"git {args[0]} failed in the case: {done.stderr.strip()[:300]}", where=str(root),
                        fix="The case must be a git repository with at least one commit")  # fmt: skip
    return done.stdout


def committed_head(root: Path) -> str:
    """The case's HEAD commit, refused when the tree has changes or untracked files."""
    changed = [line[3:] for line in _git(root, "status", "--porcelain", "--untracked-files=all").splitlines() if line]
    if changed:
        shown = ", ".join(changed[:12]) + (f" and {len(changed) - 12} more" if len(changed) > 12 else "")
        raise Refused(
            f"the case has changes that are not committed: {shown}. The platform runs the committed code "
            "only (a clean checkout of HEAD), so these would not run",
            where=str(root),
            fix="Commit them (`git add` and `git commit`), or remove the untracked files, then run again",
        )
    return _git(root, "rev-parse", "HEAD").strip()


def _call(service: Any, method: str, path: str, **kw: Any) -> dict[str, Any]:
    """One call to the service; a 403 keeps the gate's reasons (``GateRefused``)."""
    from idsp import listener

    listener.check(service.url, service.owners, "the platform service")
    try:
        r = service._http.request(method, path, **kw)
    except Exception as exc:  # httpx errors: not reachable
        raise UserError(f"the platform service is not reachable ({type(exc).__name__})",
                        fix="Try again in a minute; the platform admin checks `idsp hub up`") from None  # fmt: skip
    try:
        body = r.json()
    except ValueError:
        body = {"error": r.text[:300]}
    if r.status_code < 400:
        return body
    if r.status_code in (403, 409):
        raise GateRefused(f"the platform service refused: {body.get('error')}", reasons=body.get("reasons") or [],
                          **({"fix": body["fix"]} if body.get("fix") and not body.get("reasons") else {}))  # fmt: skip
    raise UserError(f"the platform service answered {r.status_code}: {body.get('error')}", fix=body.get("fix"))


def follow(service: Any, case_id: str, started: dict[str, Any], show: bool) -> dict[str, Any]:
    """Poll the run until it ends, printing its new lines; the last answer."""
    offset, answer = 0, started
    while True:
        answer = _call(service, "GET", f"api/cases/{case_id}/runs/{started['run_id']}", params={"offset": offset})
        if show and answer.get("lines"):
            console().print(answer["lines"], end="", highlight=False, markup=False)
        offset = answer.get("offset", offset)
        if answer.get("status") != "RUNNING" and not answer.get("lines"):
            return answer
        if answer.get("status") == "RUNNING":
            time.sleep(POLL_SECONDS)


def register(app: typer.Typer) -> None:
    @app.command("run")
    def run(
        stage: str = typer.Argument("", help="One DVC stage (default: the whole pipeline)."),
        purpose: str = typer.Option(..., "--purpose", help="gebruik (use) or ontwikkeling (development)."),
        as_json: bool = JSON_OPTION,
    ) -> None:
        """An official run of the committed case, made by the platform (the hub's runner)."""
        from idsp.case import Case
        from idsp.service import link

        if purpose not in PURPOSES:
            raise UserError(f"--purpose must be gebruik or ontwikkeling, not {purpose!r}")
        if not link.on_hub():
            raise UserError(
                "`idsp run` asks the hub's platform service, and this is not a hub server",
                fix="Off the hub, run `dvc repro` in the case: in-process mode trusts its one user and nothing "
                "it runs is official",
            )
        case = Case.open()
        commit = committed_head(Path(case.root))
        service = link.hub_service()
        body = {"commit": commit, "stage": stage, "purpose": purpose}
        started = _call(service, "POST", f"api/cases/{case.id}/runs", json=body, timeout=600.0)
        if not as_json:
            console_err().print(f"run {started['run_id']} of {case.id} at {commit[:12]} "
                                f"({'officieel' if started['official'] else 'verkennend'}, {purpose}); "
                                f"MLflow: {started['mlflow_link']}", highlight=False)  # fmt: skip
        ended = follow(service, case.id, started, show=not as_json)
        if as_json:
            print_json({k: v for k, v in ended.items() if k != "lines"})
        else:
            console_err().print(f"run {ended['status']} (exit {ended.get('exit_code')}, {ended.get('seconds')} s); "
                                f"MLflow: {ended['mlflow_link']}", highlight=False)  # fmt: skip
        if ended.get("status") != "FINISHED":
            raise typer.Exit(1)
