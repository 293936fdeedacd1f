"""The model registry through the platform service: ``POST api/cases/<id>/models``.

Rule: only the service creates registered models and versions (on the MLflow server the
``models_auth`` check refuses everyone else), and only from a run that its own audit log
records as an official run for use of this case: a ``run.started`` entry the service wrote
(official, purpose use, approvals named, the runner named) and a ``run.ended`` entry with
status FINISHED and exit code 0. A run's tags decide nothing (a member can set tags on the
runs of the case's own experiment); where the tags claim another status or approval than the
log, the request is refused and says so. Each registration is an audit event
(``model.registered``) with the member as actor.
"""

from __future__ import annotations

import re
from typing import Any

from idsp.hub.case_registry import people
from idsp.service.app import ApiError, _Api
from idsp.service.runner import CASE_PATH, _case
from idsp.service.runner_mlflow import RunnerMlflow
from legal_ethics import audit

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
RUN_RE = re.compile(r"^[0-9a-f]{32}$")
ARTIFACT_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,99}$")
FIELDS = frozenset({"run_id", "name", "artifact_path"})


def service_record(log_path, case_id: str, run_id: str) -> tuple[dict | None, dict | None]:
    """The service log's ``run.started`` (written by the service for its runner) and
    ``run.ended`` entries of MLflow run ``run_id`` of ``case_id``."""
    started = ended = None
    for entry in audit.entries(path=log_path):
        data = entry.get("data") or {}
        if entry.get("case_id") != case_id or data.get("run_id") != run_id:
            continue
        if entry.get("event") == "run.started" and data.get("runner"):
            started = entry
        elif entry.get("event") == "run.ended" and data.get("runner"):
            ended = entry
    return started, ended


def problems(run_id: str, started: dict | None, ended: dict | None, tags: dict[str, str]) -> list[str]:
    """Why the service will not register from ``run_id``; empty when it will."""
    if started is None:
        return [f"the platform's audit log has no official run {run_id} of this case: only runs the platform made "
                "(`idsp run --purpose gebruik`) register a model, whatever a run's tags say"]
    found = audit.official_problems(run_id, tags, started, purpose="use")
    if ended is None:
        found.append(f"run {run_id} has not ended yet (no run.ended in the platform's audit log)")
    elif (ended.get("data") or {}).get("status") != "FINISHED" or (ended.get("data") or {}).get("exit_code") != 0:
        data = ended.get("data") or {}
        found.append(f"run {run_id} ended {data.get('status')} (exit code {data.get('exit_code')}, audit log entry "
                     f"{ended.get('seq')}): only a run that finished registers a model")
    return found


def _body(raw: dict[str, Any]) -> tuple[str, str, str]:
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise ApiError(400, f"unknown field(s) {', '.join(unknown)}; send run_id, name and optionally artifact_path")
    run_id, name, artifact = raw.get("run_id"), raw.get("name"), raw.get("artifact_path") or "model"
    if not isinstance(run_id, str) or not RUN_RE.match(run_id):
        raise ApiError(400, "`run_id` must be an MLflow run id (32 hex digits)")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ApiError(400, f"`name` must be a model name ({NAME_RE.pattern})")
    if not isinstance(artifact, str) or not ARTIFACT_RE.match(artifact) or ".." in artifact:
        raise ApiError(400, "`artifact_path` must be a path inside the run's artefacts")
    return run_id, name, artifact


class Models(_Api):
    async def post(self, case_id: str) -> None:
        user = self.actor()
        case = _case(self.service, user, case_id)
        run_id, name, artifact = _body(self.json_body())
        maker = getattr(self.service, "case_maker", None)
        if maker is None or maker.experiments is None:
            raise ApiError(503, "the model registry is not set up in this platform service (no MLflow)")
        from idsp.tracking.guard import check_text

        try:
            check_text(name, f"model name {name!r}")
        except Exception as exc:  # noqa: BLE001 - PIIFound: the name holds an identifier
            raise ApiError(400, getattr(exc, "what", str(exc))) from None
        mlflow = RunnerMlflow(maker.experiments)
        run = await mlflow.get_run(run_id)
        tags = {t["key"]: t["value"] for t in ((run or {}).get("data") or {}).get("tags", [])}
        started, ended = await self.service.run(service_record, self.service.log.path, case_id, run_id)
        if run is None:
            refuse = [f"there is no MLflow run {run_id}"]
        else:
            refuse = problems(run_id, started, ended, tags)
            if not refuse and started is not None and \
                    str((started.get("data") or {}).get("experiment_id")) != str(run["info"]["experiment_id"]):
                refuse.append(f"run {run_id} is not in the experiment the platform made it in")
        if refuse or run is None or started is None:
            await self.service.run(self.service.log.append, "model.refused", actor=user["name"], case_id=case_id,
                                   data={"run_id": run_id, "name": name, "reasons": refuse})  # fmt: skip
            self.send({"error": f"model {name!r} wordt niet geregistreerd uit run {run_id} / model {name!r} is not "
                                f"registered from run {run_id}", "reasons": refuse,
                       "fix": "Registreer alleen uit een officiële run voor gebruik: `idsp run --purpose gebruik`"},
                      status=403)  # fmt: skip
            return
        data = started["data"]
        reg_tags = {"idsp.case_id": case_id, "idsp.run_id": run_id, "idsp.approval": ",".join(data["approval_ids"]),
                    "idsp.checklist_hash": str(data.get("checklist_hash") or ""), "idsp.commit": str(data.get("commit")),
                    "idsp.audit.entry": f"{started['seq']}:{started['hash']}", "idsp.registered_by": "platform"}  # fmt: skip
        try:
            version = await mlflow.register(name, run, artifact, reg_tags, sorted(people(case)))
        except PermissionError as exc:
            raise ApiError(409, str(exc), fix="Choose another model name") from None
        await self.service.run(self.service.log.append, "model.registered", actor=user["name"], case_id=case_id,
                               data={**version, "approval_ids": data["approval_ids"]})  # fmt: skip
        self.send({**version, "approval_ids": data["approval_ids"]}, status=201)


def routes(p: str, service) -> list[tuple]:
    return [(p + CASE_PATH + "/models", Models, {"service": service})]


def all_routes(service) -> list[tuple]:
    """Official runs (``runner``) and the model registry, for ``app.make_app(extra_routes=...)``."""
    from idsp.service import runner, runner_verify

    p = service.prefix
    return [*runner.routes(p, service), *routes(p, service), *runner_verify.routes(p, service)]
