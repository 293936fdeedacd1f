"""After the run: registering its model, the audit anchors on the server, a case's last run.

Rule: only an official run made for use under a valid approval registers a model, and
its tags are not trusted on their own — the gate is asked again for the run's case and
datasets, and the approval ids, checklist hash and DVC hashes it finds now must equal the
run's tags. The case is passed in; these functions never look for it themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from idsp.errors import GateRefused
from idsp.tracking.client import connect
from idsp.tracking.guard import check_text
from idsp.tracking.provenance import APPROVAL_NONE, TAG, tag_key
from legal_ethics import gate
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
    refuse = []
    if tags.get(f"{TAG}official") != "true" or tags.get(f"{TAG}approval", APPROVAL_NONE) == APPROVAL_NONE:
        refuse.append("the run is exploratory (idsp.approval=none); only official, approved runs can be registered")
    elif tags.get(f"{TAG}purpose") != "use":
        refuse.append(f"the run was made for {tags.get(f'{TAG}purpose', 'an unknown purpose')}, not for use: register "
                      "a model from a run started with purpose='use' under an approval for use")
    if run.info.status not in ("RUNNING", "FINISHED"):
        refuse.append(f"the run ended {run.info.status}")
    if not refuse:
        refuse.extend(recheck_gate(tags, config, case))
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
            f"{TAG}approval": tags[f"{TAG}approval"],
            f"{TAG}checklist_hash": tags.get(f"{TAG}checklist_hash", ""),
            f"{TAG}case_id": tags.get(f"{TAG}case_id", ""),
        },
    )
    return {"name": version.name, "version": str(version.version), "run_id": run_id, "source": version.source}


def recheck_gate(tags: dict[str, str], config: PlatformConfig, case: CaseFile) -> list[str]:
    """What stands between a finished run (its ``tags``) and registration now; empty when nothing."""
    if case.id != tags.get(f"{TAG}case_id"):
        return [f"the run belongs to case {tags.get(f'{TAG}case_id')}, not to the case opened here ({case.id})"]
    datasets = [d for d in tags.get(f"{TAG}datasets", "").split(",") if d]
    decision = gate.check(case, datasets, config=config)
    problems = list(decision.reasons)
    if ",".join(decision.approval_ids) != tags.get(f"{TAG}approval"):
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
    anchors: dict[str, str | None] = {}
    for start in range(0, len(experiments), 100):  # search_runs takes at most 100 experiments
        token = None
        while True:
            page = client.search_runs(experiments[start : start + 100], run_view_type=ViewType.ALL,
                                      max_results=1000, page_token=token)
            for r in page:
                anchors[r.info.run_id] = r.data.tags.get(AUDIT_TAG)
            token = page.token
            if not token:
                break
    return anchors


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
