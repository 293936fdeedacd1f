"""The library's way to the platform service, and what it says when there is no hub.

Rule: on the hub (a user server: ``JUPYTERHUB_API_TOKEN`` and ``JUPYTERHUB_API_URL`` set)
every question goes to the service with the server's own token and the service's answer is
the answer; there is no quiet fall-back to in-process mode there, because in-process answers
come from the user's own process. Without a hub, :class:`InProcess` answers from the local
files and says that this mode trusts its one user.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from idsp.service.link import HubService, hub_service, on_hub, proved_user, service_url

__all__ = ["IN_PROCESS_NOTE", "HubService", "InProcess", "connect", "hub_service", "on_hub", "proved_user"]

IN_PROCESS_NOTE = (
    "in-process mode: no hub here, so this mode trusts its one user; "
    "nothing it records or decides is official on the hub"
)


def connect(
    environ: Mapping[str, str] | None = None, *, timeout: float = 10.0
) -> HubService | InProcess:
    env = os.environ if environ is None else environ
    if not on_hub(env):
        return InProcess()
    return HubService(service_url(env), env["JUPYTERHUB_API_TOKEN"], timeout=timeout)


class InProcess:
    """No hub: the same questions answered in this process, from this user's files."""

    mode = "in-process"
    note = IN_PROCESS_NOTE

    def __init__(self, config=None):
        self.config = config

    def _cfg(self):
        if self.config is None:
            from idsp.config import load_config

            self.config = load_config()
        return self.config

    def whoami(self) -> dict[str, Any]:
        from legal_ethics.reviewers import current_user

        return {
            "name": current_user(),
            "groups": [],
            "admin": False,
            "kind": "user",
            "mode": self.mode,
            "note": self.note,
        }

    def cases(self) -> list[dict[str, Any]]:
        from idsp.case_index import read_index

        keep = ("id", "path", "title", "zaaknummer", "case_type")
        return [{k: c[k] for k in keep if c.get(k) is not None} for c in read_index(self._cfg())]

    def audit(self, event: str, *, case_id: str, **data: Any) -> dict[str, Any]:
        from legal_ethics import audit

        return audit.append(
            event, actor=self.whoami()["name"], case_id=case_id, config=self._cfg(), **data
        )

    def verify(self) -> dict[str, Any]:
        from legal_ethics import audit

        report = audit.verify(self._cfg())
        problems = list(report.problems)
        if report.status == "none":  # never "intact: 0 entries": say what is there
            problems = [f"there is no audit log at {report.path}: nothing was recorded here yet"]
        return {
            "status": report.status,
            "entries": report.entries,
            "problems": problems,
            "note": self.note,
        }
