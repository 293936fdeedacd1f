"""Official runs through the platform service: ``POST api/cases/<id>/runs``, then its progress.

Rule: a member asks for a run of one commit of their case (``{commit, stage, purpose}``); the
service decides, not the member's process. It makes its own clean checkout of exactly that
commit (its data copied in from the case's DVC cache or remote, md5-checked), asks the gate
(``legal_ethics.gate.check``) there with its own trust (its audit log, reviewer registry and
recorded decisions: ``review_decide``), and refuses with the gate's reasons. A run it allows
gets an MLflow run the service makes and tags (official, purpose, approvals, commit) in the
case's official experiment, a ``run.started`` entry in the service's audit log (the requesting
member as actor, the runner named), and is carried out by the root case agent's ``run``
operation as the runner account (:mod:`idsp.hub.runner`). When it ends the service ends the
MLflow run and appends ``run.ended`` (status, exit code, MLflow run id, duration). Anything
else a member's process records is not the service's word.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from idsp.hub import runner as hub_runner
from idsp.hub.case_registry import people, role_of
from idsp.service.app import ApiError, Service, _Api
from idsp.service.runner_mlflow import RunnerMlflow

log = logging.getLogger("idsp.service.runner")
PURPOSES = {"gebruik": "use", "ontwikkeling": "development", "use": "use", "development": "development"}
RUN_FIELDS = frozenset({"commit", "stage", "purpose"})
MAX_LINES = 64 * 1024
CASE_PATH = r"api/cases/([a-z][a-z0-9-]{1,62}[a-z0-9])"


@dataclass
class RunRecord:
    run_id: str
    case_id: str
    actor: str
    commit: str
    stage: str
    purpose: str
    official: bool
    approval_ids: list[str]
    mlflow_run: str
    experiment_id: str
    runner: str
    log_path: str
    status_path: str
    started: float = field(default_factory=time.time)
    ended: dict[str, Any] | None = None

    def link(self, prefix: str) -> str:
        root = prefix.rstrip("/").rsplit("/", 1)[0]  # /services/idsp -> /services
        return f"{root}/mlflow/#/experiments/{self.experiment_id}/runs/{self.mlflow_run}"


@dataclass
class Runner:
    """The runs of this service: kept in memory and in ``<state>/runs/<run>.json``."""

    state: Path
    runs: dict[str, RunRecord] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def save(self, record: RunRecord) -> None:
        from idsp.files import atomic_write

        folder = self.state / "runs"
        folder.mkdir(mode=0o700, exist_ok=True)
        atomic_write(folder / f"{record.run_id}.json", json.dumps(record.__dict__), mode=0o600)

    def get(self, run_id: str) -> RunRecord | None:
        if run_id in self.runs:
            return self.runs[run_id]
        path = self.state / "runs" / f"{run_id}.json"
        if hub_runner.RUN_ID_RE.match(run_id) and path.is_file():
            record = RunRecord(**json.loads(path.read_text(encoding="utf-8")))
            self.runs[run_id] = record
            return record
        return None


def runner_of(service: Service) -> Runner:
    found = getattr(service, "runner", None)
    if found is None:
        found = Runner(Path(service.log.folder).parent)
        service.runner = found  # type: ignore[attr-defined]
    return found


def _case(service: Service, user: dict[str, Any], case_id: str) -> dict[str, Any]:
    """The registry's entry of one of the user's cases, else 403 (no probing for ids)."""
    case = service.cases.registry.get(case_id)
    if case is None or case.get("status") or role_of(case, user["name"]) is None or not case.get("path"):
        raise ApiError(403, f"zaak {case_id!r} is niet een van uw zaken / case {case_id!r} is not one of your cases",
                       fix="`idsp case members list` shows who is in a case; its owner adds members")  # fmt: skip
    return case


def _request(body: dict[str, Any]) -> tuple[str, str, str]:
    unknown = sorted(set(body) - RUN_FIELDS)
    if unknown:
        raise ApiError(400, f"unknown field(s) {', '.join(unknown)}; a run has commit, stage and purpose")
    commit, stage, purpose = body.get("commit"), body.get("stage") or "", body.get("purpose")
    if not isinstance(commit, str) or not hub_runner.COMMIT_RE.match(commit):
        raise ApiError(400, "`commit` must be the full commit id (40 hex digits) of the case's HEAD",
                       fix="`idsp run` sends it for you")  # fmt: skip
    if not isinstance(stage, str) or (stage and not hub_runner.STAGE_RE.match(stage)):
        raise ApiError(400, f"`stage` {stage!r} is not a DVC stage name")
    if purpose not in PURPOSES:
        raise ApiError(400, f"`purpose` must be gebruik or ontwikkeling, not {purpose!r}")
    return commit, stage, PURPOSES[purpose]


def judge(service: Service, case_path: Path, commit: str, purpose: str) -> dict[str, Any]:
    """The gate on a clean checkout of ``commit`` (blocking): the decision as a dict, with the
    datasets it judged. The checkout is the service's own and removed afterwards."""
    from idsp.service.review_decide import open_case, review_parts
    from legal_ethics import gate

    parts = review_parts(service)
    folder = Path(service.log.folder).parent / "runner-checks"
    folder.mkdir(mode=0o700, exist_ok=True)
    checkout = folder / secrets.token_hex(8)
    try:
        try:
            hub_runner.clone(case_path, commit, checkout)
            remote = _remote(service, case_path)
            sources = [case_path / ".dvc" / "cache", *([remote] if remote else [])]
            hub_runner.materialize(checkout, sources, stage_outputs=True)
        except hub_runner.CheckoutError as exc:
            raise ApiError(409, exc.what, fix=exc.fix or "") from None
        case = open_case(checkout)
        # the official datasets are what an approval binds; without any the run is exploratory
        datasets = [d.name for d in case.spec.datasets if d.official] or [d.name for d in case.spec.datasets]
        decision = gate.check(case, datasets, purpose=purpose, config=parts.decisions.config)  # type: ignore[arg-type]
        out = decision.as_dict()
        out["datasets"] = datasets
        out["data_tags"] = {f"idsp.data.{k}.dvc_md5": str(v) for k, v in (decision.bindings.get("data") or {}).items()}
        return out
    finally:
        shutil.rmtree(checkout, ignore_errors=True)


def _remote(service: Service, case_path: Path) -> Path | None:
    """The case's folder in the DVC remote, when the platform keeps one beside the cases."""
    root = getattr(service, "dvc_remote_root", None)
    if root is None:
        return None
    path = Path(root) / case_path.name
    return path if path.is_dir() else None


def _tags(record: RunRecord, decision: dict[str, Any]) -> dict[str, str]:
    return {
        "idsp.case_id": record.case_id, "idsp.official": "true" if record.official else "false",
        "idsp.purpose": record.purpose, "idsp.approval": ",".join(record.approval_ids) or "none",
        "idsp.commit": record.commit, "idsp.git.commit": record.commit, "idsp.stage": record.stage or "(alle)",
        "idsp.runner": record.runner, "idsp.requested_by": record.actor, "idsp.run": record.run_id,
        "idsp.checklist_hash": str(decision.get("checklist_hash") or "none"),
        "idsp.datasets": ",".join(decision.get("datasets") or []), "mlflow.user": record.runner,
        **decision.get("data_tags", {}),
    }  # fmt: skip


class Runs(_Api):
    async def post(self, case_id: str) -> None:
        user = self.actor()
        case = _case(self.service, user, case_id)
        commit, stage, purpose = _request(self.json_body())
        maker = getattr(self.service, "case_maker", None)
        if maker is None or maker.experiments is None:
            raise ApiError(503, "official runs are not set up in this platform service (no case agent or MLflow)")
        t0 = time.monotonic()
        loop = asyncio.get_running_loop()
        decision = await loop.run_in_executor(maker.pool, judge, self.service, Path(case["path"]), commit, purpose)
        if not decision["allowed"]:
            await self.service.run(self.service.log.append, "run.refused", actor=user["name"], case_id=case_id,
                                   data={"commit": commit, "stage": stage, "purpose": purpose,
                                         "reasons": decision["reasons"]})  # fmt: skip
            self.send({"error": f"de poort weigert deze run / the run gate refused a run of case {case_id} at "
                                f"{commit[:12]}", "reasons": decision["reasons"],
                       "fix": "Los de redenen op, commit, en probeer opnieuw / resolve the reasons, commit, run again"},
                      status=403)  # fmt: skip
            return
        record = await self._start(user["name"], case, commit, stage, purpose, decision)
        self.send({**_shown(record, self.service.prefix), "gate_seconds": round(time.monotonic() - t0, 3)}, status=202)

    async def _start(self, actor: str, case: dict[str, Any], commit: str, stage: str, purpose: str,
                     decision: dict[str, Any]) -> RunRecord:
        maker = self.service.case_maker
        mlflow = RunnerMlflow(maker.experiments)
        run_id = secrets.token_hex(16)
        exp_id, mlflow_user, password = await mlflow.prepare(case["id"], sorted(people(case)))
        record = RunRecord(run_id=run_id, case_id=case["id"], actor=actor, commit=commit, stage=stage, purpose=purpose,
                           official=bool(decision["official"]), approval_ids=list(decision["approval_ids"]),
                           mlflow_run="", experiment_id=exp_id, runner="", log_path="", status_path="")  # fmt: skip
        record.runner = await self._runner_account()
        record.mlflow_run = await mlflow.create_run(exp_id, f"officieel-{stage or 'pijplijn'}-{commit[:8]}",
                                                    _tags(record, decision))  # fmt: skip
        started = await self.service.run(self.service.log.append, "run.started", actor=actor, case_id=case["id"], data={
            "run_id": record.mlflow_run, "official": record.official, "purpose": purpose,
            "approval_ids": record.approval_ids, "checklist_hash": decision.get("checklist_hash"),
            "datasets": decision.get("datasets"), "commit": commit, "stage": stage, "runner": record.runner,
            "runner_run": run_id, "experiment_id": exp_id, "tracking_uri": mlflow.uri})  # fmt: skip
        await mlflow.set_tags(record.mlflow_run, {"idsp.audit.entry": f"{started['seq']}:{started['hash']}"})
        env = {"IDSP_RUNNER_MLFLOW_RUN": record.mlflow_run, "IDSP_RUNNER_RUN": run_id,
               "IDSP_RUNNER_PURPOSE": purpose, "IDSP_RUNNER_OFFICIAL": "1" if record.official else "0",
               "IDSP_RUNNER_APPROVAL": ",".join(record.approval_ids), "IDSP_TRACKING__URI": mlflow.uri,
               "MLFLOW_TRACKING_USERNAME": mlflow_user, "MLFLOW_TRACKING_PASSWORD": password}  # fmt: skip
        try:
            where = await maker.agent("run", case_id=case["id"], commit=commit, stage=stage, run_id=run_id, env=env)
        except BaseException as exc:
            record.log_path = ""
            await self._end(record, {"exit_code": -1, "phase": "start", "error": getattr(exc, "message", str(exc)),
                                     "seconds": 0.0})  # fmt: skip
            raise
        record.log_path, record.status_path, record.runner = where["log"], where["status"], where["runner"]
        runner = runner_of(self.service)
        runner.runs[run_id] = record
        await self.service.run(runner.save, record)
        asyncio.get_running_loop().create_task(watch(self.service, record))
        return record

    async def _runner_account(self) -> str:
        """``<prefix>svc-runner``: the prefix is the one of this service's own account."""
        import pwd

        prefix = getattr(self.service, "user_prefix", None)
        if prefix is None:
            own = pwd.getpwuid(os.geteuid()).pw_name
            prefix = own[: -len("svc-idsp")] if own.endswith("svc-idsp") else ""
        return hub_runner.account_name(prefix)

    async def _end(self, record: RunRecord, status: dict[str, Any]) -> None:
        await finish(self.service, record, status)

    async def get(self, case_id: str, run_id: str = "") -> None:
        user = self.actor()
        _case(self.service, user, case_id)
        record = runner_of(self.service).get(run_id)
        if record is None or record.case_id != case_id:
            raise ApiError(404, f"er is geen run {run_id!r} van zaak {case_id!r} / no run {run_id!r} of this case")
        try:
            offset = max(0, int(self.get_argument("offset", "0")))
        except ValueError:
            raise ApiError(400, "`offset` must be a number of bytes") from None
        await poll(self.service, record)
        text, offset = await self.service.run(_read_from, record.log_path, offset)
        self.send({**_shown(record, self.service.prefix), "lines": text, "offset": offset})


def _read_from(path: str, offset: int) -> tuple[str, int]:
    if not path:
        return "", offset
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(MAX_LINES)
    except FileNotFoundError:
        return "", offset
    cut = data.rfind(b"\n") + 1 if len(data) == MAX_LINES else len(data)  # whole lines only
    return data[:cut].decode("utf-8", "replace"), offset + cut


def _shown(record: RunRecord, prefix: str) -> dict[str, Any]:
    ended = record.ended or {}
    return {
        "run_id": record.run_id, "case_id": record.case_id, "commit": record.commit, "stage": record.stage,
        "purpose": record.purpose, "official": record.official, "approval_ids": record.approval_ids,
        "mlflow_run_id": record.mlflow_run, "experiment_id": record.experiment_id, "runner": record.runner,
        "mlflow_link": record.link(prefix), "status": ended.get("status", "RUNNING"),
        "exit_code": ended.get("exit_code"), "seconds": ended.get("seconds"), "error": ended.get("error"),
    }  # fmt: skip


async def poll(service: Service, record: RunRecord) -> bool:
    """Finish ``record`` when its status file is there; True once it has ended."""
    if record.ended is not None:
        return True
    if not record.status_path or not os.path.exists(record.status_path):
        return False
    status = json.loads(Path(record.status_path).read_text(encoding="utf-8"))
    await finish(service, record, status)
    return True


async def watch(service: Service, record: RunRecord) -> None:
    while not await poll(service, record):
        await asyncio.sleep(0.25)


async def finish(service: Service, record: RunRecord, status: dict[str, Any]) -> None:
    """End the MLflow run and append ``run.ended``, once."""
    runner = runner_of(service)
    async with runner.lock:
        if record.ended is not None:
            return
        ok = status.get("exit_code") == 0
        state = "FINISHED" if ok else "FAILED"
        if record.mlflow_run:
            try:
                await RunnerMlflow(service.case_maker.experiments).end_run(record.mlflow_run, state)
            except Exception:  # noqa: BLE001 - the log records the end either way
                log.exception("ending MLflow run %s", record.mlflow_run)
        seconds = round(time.time() - record.started, 3)
        data = {"run_id": record.mlflow_run, "status": state, "exit_code": status.get("exit_code"),
                "seconds": seconds, "runner": record.runner, "runner_run": record.run_id,
                "phase": status.get("phase"), "commit": record.commit}  # fmt: skip
        if status.get("error"):
            data["error"] = str(status["error"])[:500]
        await service.run(service.log.append, "run.ended", actor=record.actor, case_id=record.case_id, data=data)
        record.ended = {**data, "status": state}
        await service.run(runner.save, record)


def routes(p: str, service: Service) -> list[tuple]:
    kw = {"service": service}
    return [
        (p + CASE_PATH + "/runs", Runs, kw),
        (p + CASE_PATH + r"/runs/([0-9a-f]{32})", Runs, kw),
    ]

