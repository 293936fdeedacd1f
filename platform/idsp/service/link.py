"""The wire to the platform service from inside a user server: where it is, who it says you are.

Rule: on the hub (``JUPYTERHUB_API_TOKEN`` and ``JUPYTERHUB_API_URL`` set, as the hub sets
them for every server) the service's answers are the answers, asked with the server's own
token; nothing here falls back to the user's own files. The service's address comes only
from ``$IDSP_SERVICE_URL`` (set by the platform at each spawn) and must be the hub's
``/services/idsp/`` path on loopback or on the hub API's own host: ``platform.yaml``,
``IDSP_CONFIG`` and ``IDSP_HOME`` never move it, so a file in a shared case folder cannot send
a member's token elsewhere. On loopback the token is sent only when the socket listening on
the service's port belongs to the service's account (``$IDSP_SERVICE_ACCOUNT``, set by the
platform at each spawn), root or this user: while the service is down, another local account
could bind its port and collect tokens (``idsp.listener``). This module sits low (the ethics
records use it) and imports nothing of the platform above :mod:`idsp.errors` and
:mod:`idsp.listener`.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from idsp import listener
from idsp.errors import Refused, UserError

SERVICE_NAME = "idsp"
PREFIX = f"/services/{SERVICE_NAME}/"
SERVICE_URL_ENV = "IDSP_SERVICE_URL"
SERVICE_ACCOUNT_ENV = "IDSP_SERVICE_ACCOUNT"  # the OS account the service runs as
# What a signed-in user may record through the service. Decisions (approved, rejected,
# revoked), run and gate events, membership and registry changes come later from the
# service's own code paths (issues 11-13), never from a request body: a member who could
# write `member.added` would state a registry fact the service never made.
USER_EVENTS = frozenset({"answered", "submitted"})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def on_hub(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return bool(env.get("JUPYTERHUB_API_TOKEN") and env.get("JUPYTERHUB_API_URL"))


def service_url(environ: Mapping[str, str] | None = None) -> str:
    """The service's address from the hub-set environment, or an error naming what is wrong."""
    env = os.environ if environ is None else environ
    url = env.get(SERVICE_URL_ENV, "")
    if not url:
        raise UserError(
            f"this is a hub server, but ${SERVICE_URL_ENV} (where the platform service listens) is not set",
            fix="Stop and start your server from the hub's home page; the platform sets it at each start",
        )
    parts = urlsplit(url)
    api = urlsplit(env.get("JUPYTERHUB_API_URL", ""))
    hub_host = api.hostname
    allowed_host = parts.hostname in LOOPBACK or (parts.hostname is not None and parts.hostname == hub_host)
    # below a hub.base_url the service is <base>services/idsp/, as the hub API is <base>hub/api
    api_path = api.path.rstrip("/") + "/"
    base = api_path.removesuffix("hub/api/") if api_path.endswith("/hub/api/") else "/"
    expected = base + PREFIX.lstrip("/")
    if parts.scheme not in ("http", "https") or not allowed_host or parts.path.rstrip("/") + "/" != expected:
        raise UserError(
            f"${SERVICE_URL_ENV} is {url!r}, which is not the hub's platform service: it must be "
            f"{expected} on this machine (loopback) or on the hub's own host ({hub_host})",
            fix=f"Unset {SERVICE_URL_ENV} in your terminal or notebook, or stop and start your server "
            "from the hub's home page",
        )
    return url


def service_owners(environ: Mapping[str, str] | None = None) -> set[int]:
    """The accounts whose socket on the service's port may get this server's token: the
    service's own (``$IDSP_SERVICE_ACCOUNT``), root, and this process's user."""
    env = os.environ if environ is None else environ
    owners = listener.own_uids()
    name = env.get(SERVICE_ACCOUNT_ENV, "")
    if name:
        try:
            owners.add(pwd.getpwnam(name).pw_uid)
        except KeyError:
            pass  # the real service then reads as a stranger: refused, never sent
    return owners


class HubService:
    """The platform service over HTTP, authenticated by the server's own hub token."""

    mode = "hub"

    def __init__(self, url: str, token: str, *, timeout: float = 10.0, transport: Any = None):
        import httpx  # here, not at the top: `idsp --help` and laptop use never pay for it

        self._httpx = httpx
        self.url = url.rstrip("/") + "/"
        self.owners = service_owners()
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
        listener.check(self.url, self.owners, "the platform service")  # before the token goes out
        try:
            r = self._http.request(method, path, **kw)
        except self._httpx.HTTPError as exc:
            raise UserError(
                f"the platform service is not reachable ({exc.__class__.__name__}: {exc}); on the hub "
                "nothing is recorded without it",
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
        raise UserError(f"the platform service answered {r.status_code}: {message}", where=self.url + path, fix=fix)

    def whoami(self) -> dict[str, Any]:
        return self._call("GET", "api/whoami")

    def cases(self) -> list[dict[str, Any]]:
        return self._call("GET", "api/cases")["cases"]

    def audit(self, event: str, *, case_id: str | None, actor: str | None = None, **data: Any) -> dict[str, Any]:
        """Record one event; ``actor``, when given, must be the signed-in user (else 403)."""
        body: dict[str, Any] = {"event": event, "case_id": case_id, "data": data}
        if actor is not None:
            body["actor"] = actor
        return self._call("POST", "api/audit", json=body)

    def verify(self) -> dict[str, Any]:
        return self._call("GET", "api/audit/verify")

    def reviewer_registry(self) -> dict[str, Any]:
        """The hub's reviewer registry as the gate needs it (active keys, roles, and revoked
        keys only with the decisions the service verified while they were active)."""
        return self._call("GET", "api/reviewers/registry")

    def decision_payload(self, case_id: str, **query: str) -> dict[str, Any]:
        """The exact payload the service will accept for a decision, to be signed as is."""
        return self._call("GET", f"api/cases/{case_id}/decisions/payload", params=query)

    def decide(self, case_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"api/cases/{case_id}/decisions", json=body)

    def case_decisions(self, case_id: str) -> list[dict[str, Any]]:
        """The signed decisions the service recorded for one of my cases."""
        return self._call("GET", f"api/cases/{case_id}/decisions")["decisions"]


@cache
def _service(url: str, token: str) -> HubService:
    return HubService(url, token)


@cache
def _proved(url: str, token: str) -> str:
    # Cached per process (and per token): the hub's identity for a server's token does not
    # change while the server runs, and every answer and submit asks for it.
    return str(_service(url, token).whoami()["name"])


def hub_service(environ: Mapping[str, str] | None = None) -> HubService:
    """This server's way to the service (one per process); only call it on the hub."""
    env = os.environ if environ is None else environ
    return _service(service_url(env), env["JUPYTERHUB_API_TOKEN"])


def proved_user(environ: Mapping[str, str] | None = None) -> str:
    """The hub user name the service proves for this server's token."""
    env = os.environ if environ is None else environ
    return _proved(service_url(env), env["JUPYTERHUB_API_TOKEN"])
