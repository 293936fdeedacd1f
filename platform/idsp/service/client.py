"""The library's way to the platform service, and what it says when there is no hub.

Rule: on the hub (a user server: ``JUPYTERHUB_API_TOKEN`` and ``JUPYTERHUB_API_URL`` set)
every question goes to the service with the server's own token and the service's answer is
the answer; there is no quiet fall-back to in-process mode there, because in-process answers
come from the user's own process. Without a hub, :class:`InProcess` answers from the local
files and says that this mode trusts its one user.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from typing import Any

import httpx

from idsp.errors import Refused, UserError
from idsp.service.hubconfig import SERVICE_URL_ENV

IN_PROCESS_NOTE = (
    "in-process mode: no hub here, so this mode trusts its one user; "
    "nothing it records or decides is official on the hub"
)


def on_hub(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get("JUPYTERHUB_API_TOKEN") and env.get("JUPYTERHUB_API_URL"))


def connect(
    environ: Mapping[str, str] | None = None, *, timeout: float = 10.0
) -> HubService | InProcess:
    env = os.environ if environ is None else environ
    if not on_hub(env):
        return InProcess()
    url = env.get(SERVICE_URL_ENV, "")
    if not url:
        raise UserError(
            f"this is a hub server, but ${SERVICE_URL_ENV} (where the platform service listens) is not set",
            fix="Stop and start your server from the hub's home page; the platform sets it at each start",
        )
    return HubService(url, env["JUPYTERHUB_API_TOKEN"], timeout=timeout)


class HubService:
    """The platform service over HTTP, authenticated by the server's own hub token."""

    mode = "hub"

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ):
        self.url = url.rstrip("/") + "/"
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout,
            transport=transport,
            headers={"Authorization": f"token {token}"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> HubService:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, method: str, path: str, **kw) -> Any:
        try:
            r = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise UserError(
                f"the platform service is not reachable ({exc.__class__.__name__}: {exc})",
                where=self.url + path,
                fix="Try again in a minute; if it stays so, the platform admin checks `idsp hub up`",
            ) from None
        try:
            body = r.json()
        except ValueError:
            body = {"error": r.text[:200]}
        if r.status_code < 400:
            return body
        message = body.get("error") or f"HTTP {r.status_code}"
        fix = body.get("fix")
        if r.status_code in (403, 409):  # a proper check that said no
            raise Refused(f"the platform service refused: {message}", fix=fix)
        if r.status_code == 401:
            raise UserError(
                f"the platform service did not accept this server's hub token: {message}",
                fix=fix or "Stop and start your server from the hub's home page",
            )
        raise UserError(
            f"the platform service answered {r.status_code}: {message}",
            where=self.url + path,
            fix=fix,
        )

    def whoami(self) -> dict[str, Any]:
        return self._call("GET", "api/whoami")

    def cases(self) -> list[dict[str, Any]]:
        return self._call("GET", "api/cases")["cases"]

    def audit(self, event: str, *, case_id: str, **data: Any) -> dict[str, Any]:
        return self._call(
            "POST", "api/audit", json={"event": event, "case_id": case_id, "data": data}
        )

    def verify(self) -> dict[str, Any]:
        return self._call("GET", "api/audit/verify")


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
        return {
            "name": getpass.getuser(),
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

        path = audit.log_path(self._cfg())
        if not path.exists():
            return {
                "status": "missing",
                "entries": 0,
                "note": self.note,
                "problems": [
                    f"there is no audit log at {path} (nothing recorded yet, or it was deleted)"
                ],
            }
        report = audit.verify(self._cfg())
        return {
            "status": "intact" if report.ok else "broken",
            "entries": report.entries,
            "problems": list(report.problems),
            "note": self.note,
        }
