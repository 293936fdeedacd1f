"""The platform's audit log against the tracking server: ``GET api/runs/verify``.

Rule: every run of every experiment on the hub's MLflow server is read (as the MLflow admin,
deleted runs and experiments included) and compared with the service's own log, both ways
(``legal_ethics.audit.check_anchors``): each official run (in a case's ``.officieel``
experiment) must carry the ``run.started`` entry the service wrote for it, with the official
status and approval the log recorded; each run the log started must still be on the server
with that tag; and a run anywhere that claims to be official (``idsp.official=true``) without
the log's record is named. Runs of the case experiments that only claim to be exploratory are
the member's own (their process's log, ``idsp ethics audit verify`` in their server).
"""

from __future__ import annotations

from typing import Any

import httpx

from idsp.service.app import _Api
from idsp.service.runner_mlflow import OFFICIAL_SUFFIX, RunnerMlflow
from legal_ethics import audit

CLAIMED = ("idsp.audit.entry", "idsp.official", "idsp.approval", "idsp.case_id")
PAGE = 1000


async def _pages(mlflow: RunnerMlflow, client, path: str, body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    found, token = [], None
    while True:
        page = await mlflow._ok(client, "POST", path, json={**body, **({"page_token": token} if token else {})})
        found += page.get(key, [])
        token = page.get("next_page_token")
        if not token:
            return found


async def claims(mlflow: RunnerMlflow) -> tuple[dict[str, dict[str, str]], set[str]]:
    """Run id -> its claimed tags, for every run; and the ids of runs in official experiments."""
    out: dict[str, dict[str, str]] = {}
    official: set[str] = set()
    async with httpx.AsyncClient(timeout=60) as client:
        experiments = await _pages(mlflow, client, "/api/2.0/mlflow/experiments/search",
                                   {"max_results": PAGE, "view_type": "ALL"}, "experiments")  # fmt: skip
        names = {str(e["experiment_id"]): e.get("name", "") for e in experiments}
        ids = sorted(names)
        for start in range(0, len(ids), 100):
            runs = await _pages(mlflow, client, "/api/2.0/mlflow/runs/search",
                                {"experiment_ids": ids[start:start + 100], "run_view_type": "ALL",
                                 "max_results": PAGE}, "runs")  # fmt: skip
            for run in runs:
                run_id = run["info"]["run_id"]
                tags = {t["key"]: t["value"] for t in run.get("data", {}).get("tags", [])}
                out[run_id] = {k: v for k, v in tags.items() if k in CLAIMED}
                if names.get(str(run["info"]["experiment_id"]), "").endswith(OFFICIAL_SUFFIX):
                    official.add(run_id)
    return out, official


def compare(log_path, uri: str, claimed: dict[str, dict[str, str]], official: set[str]) -> list[str]:
    """The problems between the service's log and the server (blocking: reads the log)."""
    anchors = {run_id: claimed[run_id].get(audit.AUDIT_TAG) for run_id in official}
    problems = audit.check_anchors(anchors, path=log_path, tracking_uri=uri,
                                   claims={r: claimed[r] for r in official})  # fmt: skip
    started = {(e.get("data") or {}).get("run_id") for e in audit.entries(path=log_path) if e.get("event") == "run.started"}
    for run_id, tags in sorted(claimed.items()):
        if run_id not in official and tags.get("idsp.official") == "true" and run_id not in started:
            problems.append(f"MLflow run {run_id} (case {tags.get('idsp.case_id', '?')}) is tagged official, but the "
                            "platform's audit log never started it: the tags were set by hand")  # fmt: skip
    return problems


class RunsVerify(_Api):
    async def get(self) -> None:
        self.actor()
        maker = getattr(self.service, "case_maker", None)
        if maker is None or maker.experiments is None:
            self.send({"status": "none", "problems": [], "runs_compared": 0})
            return
        mlflow = RunnerMlflow(maker.experiments)
        claimed, official = await claims(mlflow)
        problems = await self.service.run(compare, self.service.log.path, mlflow.uri, claimed, official)
        self.send({"status": "broken" if problems else "intact", "problems": problems,
                   "runs_compared": len(claimed), "official_runs": len(official)})  # fmt: skip


def routes(p: str, service) -> list[tuple]:
    return [(p + "api/runs/verify", RunsVerify, {"service": service})]
