"""After the run: registering its model, the audit anchors on the server, a case's last run.

Rule: only a run that the audit log records (its ``run.started`` entry, matched by MLflow
run id) as official, for use, under approvals registers a model — a run's tags alone never
make it official, since a case member can set them — and the gate is asked again for the
run's case and datasets: the approval ids it finds now must equal the log's record, the
checklist hash and DVC hashes the run's tags. ``mlflow.register_model`` called directly
bypasses this: only the registry's permissions on the server can close that. The case is passed in; these functions never look for it themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from idsp.errors import GateRefused
from idsp.tracking.client import connect
from idsp.tracking.guard import check_text
from idsp.tracking.provenance import APPROVAL_NONE, TAG, tag_key
from legal_ethics import audit, gate
from legal_ethics.audit import AUDIT_TAG  # "<seq>:<hash>" of a run's run.started entry

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile
    from idsp.config import PlatformConfig


def _config(config: PlatformConfig | None) -> PlatformConfig:
    from idsp.config import load_config

    return config or load_config()


def register_model(
    run_id: str,
    name: str,
    *,
    case: CaseFile,
    artifact_path: str = "model",
    config: PlatformConfig | None = None,
) -> dict[str, Any]:
    """Register ``runs:/<run_id>/<artifact_path>`` as ``name`` — only from an official run of ``case``."""
    config = _config(config)
    uri, client = connect(config)
    run = client.get_run(run_id)
    tags = run.data.tags
    record = audit.run_started(run_id, config)
    refuse = audit.official_problems(run_id, tags, record, purpose="use")
    if run.info.status not in ("RUNNING", "FINISHED"):
        refuse.append(f"the run ended {run.info.status}")
    if not refuse and record is not None:
        refuse.extend(recheck_gate(tags, config, case, record=record))
    if refuse:
        raise GateRefused(f"model {name!r} cannot be registered from run {run_id}", reasons=refuse)
    check_text(name, f"model name {name!r}")
    import mlflow

    mlflow.set_tracking_uri(uri)
    version = mlflow.register_model(
        f"runs:/{run_id}/{artifact_path}",
        name,
        tags={
            f"{TAG}run_id": run_id,
            f"{TAG}approval": ",".join(record["data"]["approval_ids"]) if record else APPROVAL_NONE,
            f"{TAG}checklist_hash": tags.get(f"{TAG}checklist_hash", ""),
            f"{TAG}case_id": tags.get(f"{TAG}case_id", ""),
        },
    )
    return {"name": version.name, "version": str(version.version), "run_id": run_id, "source": version.source}


def recheck_gate(tags: dict[str, str], config: PlatformConfig, case: CaseFile,
                 record: dict[str, Any] | None = None) -> list[str]:
    """What stands between a finished run and registration now; empty when nothing. The
    case, datasets and approvals come from the audit log's ``record`` of the run's start
    when given (its tags otherwise)."""
    approved: str | None
    if record is not None:
        case_id, logged = record.get("case_id"), record.get("data") or {}
        datasets, approved = list(logged.get("datasets") or []), ",".join(logged.get("approval_ids") or [])
    else:
        case_id, approved = tags.get(f"{TAG}case_id"), tags.get(f"{TAG}approval")
        datasets = [d for d in tags.get(f"{TAG}datasets", "").split(",") if d]
    if case.id != case_id or case.id != tags.get(f"{TAG}case_id"):
        return [f"the run belongs to case {case_id}, not to the case opened here ({case.id})"]
    decision = gate.check(case, datasets, config=config)
    problems = list(decision.reasons)
    if ",".join(decision.approval_ids) != approved:
        problems.append("the run's approval ids are not the approvals valid now")
    if (decision.checklist_hash or "none") != tags.get(f"{TAG}checklist_hash"):
        problems.append("the checklist changed since the run")
    for name in datasets:
        now = (decision.bindings.get("data") or {}).get(name) or "none"
        if now != tags.get(f"{TAG}data.{tag_key(name)}.dvc_md5"):
            problems.append(f"dataset {name} is not the version the run used")
    return problems


def audit_anchors(config: PlatformConfig | None = None) -> dict[str, str | None]:
    """Run id -> its ``idsp.audit.entry`` tag ("<seq>:<hash>", or None when the run has no
    such tag) for every run on the tracking server, deleted ones included, for
    ``legal_ethics.audit.check_anchors``."""
    return {run_id: tags.get(AUDIT_TAG) for run_id, tags in run_claims(config).items()}


CLAIMED = (AUDIT_TAG, f"{TAG}official", f"{TAG}approval", f"{TAG}case_id", f"{TAG}runner")


def run_claims(config: PlatformConfig | None = None) -> dict[str, dict[str, str]]:
    """Run id -> what its tags claim (audit entry, official, approval, case) for every run of
    every experiment on the tracking server, deleted ones included: ``audit.check_anchors``
    compares the claims with the log, so a run the log never saw start is named too."""
    from mlflow.entities import ViewType

    _, client = connect(_config(config))
    experiments: list[str] = []
    token = None
    while True:
        found = client.search_experiments(view_type=ViewType.ALL, max_results=1000, page_token=token)
        experiments += [e.experiment_id for e in found]
        token = found.token
        if not token:
            break
    claims: dict[str, dict[str, str]] = {}
    for start in range(0, len(experiments), 100):  # search_runs takes at most 100 experiments
        token = None
        while True:
            page = client.search_runs(experiments[start : start + 100], run_view_type=ViewType.ALL,
                                      max_results=1000, page_token=token)
            for r in page:
                claims[r.info.run_id] = {k: v for k, v in r.data.tags.items() if k in CLAIMED}
            token = page.token
            if not token:
                break
    return claims


def last_run(case: CaseFile, *, config: PlatformConfig | None = None) -> dict[str, Any] | None:
    """The newest run of a case (for ``idsp case status``), or None if there is none."""
    uri, client = connect(_config(config))
    experiment = client.get_experiment_by_name(case.id)
    if experiment is None:
        return None
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        return None
    r = runs[0]
    tags = r.data.tags
    return {
        "run_id": r.info.run_id,
        "name": r.info.run_name,
        "status": r.info.status,
        "start_time": r.info.start_time,
        "end_time": r.info.end_time,
        "official": tags.get(f"{TAG}official") == "true",
        "approval": tags.get(f"{TAG}approval", APPROVAL_NONE),
        "git_commit": tags.get(f"{TAG}git.commit"),
        "datasets": [d for d in tags.get(f"{TAG}datasets", "").split(",") if d],
        "tracking_uri": uri,
    }
