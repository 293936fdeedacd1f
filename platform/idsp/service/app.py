"""The platform service's web app: tornado handlers behind JupyterHub's own service auth.

Rule: every handler learns who is calling from ``HubOAuth`` only (a hub token in the
``Authorization`` header, or the service's OAuth cookie after the hub's login, with its XSRF
check); requests without a hub identity get 401, users without the service's access scope
403. Nothing in a request body decides who the actor is. API answers are JSON, errors too
(``{"error": ..., "fix": ...}``); the one page is Dutch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from jupyterhub.services.auth import (
    HubOAuth,
    HubOAuthCallbackHandler,
    HubOAuthenticated,
)
from tornado import web

from idsp.service import ACCESS_SCOPE, PREFIX
from idsp.service.auditlog import RESERVED_KEYS, USER_EVENTS, AuditLog, LogMissing
from idsp.service.cases import CaseDirectory, IndexUnreadable
from idsp.service.hubuser import resolve_user
from idsp.service.mlflow_proxy import MlflowUpstream
from idsp.service.mlflow_proxy import routes as mlflow_routes
from idsp.service.overview import Overview, StartData
from idsp.service.pages import PageMixin, hub_root, static_routes
from legal_ethics.reviewers import role_label

log = logging.getLogger("idsp.service")
MAX_BODY = 64 * 1024  # an audit event is a few hundred bytes; evidence goes elsewhere
BODY_FIELDS = frozenset({"event", "case_id", "data", "actor"})


@dataclass
class Service:
    hub_auth: HubOAuth
    log: AuditLog
    cases: CaseDirectory
    prefix: str = PREFIX
    mlflow: MlflowUpstream | None = None  # MLflow through the hub at <prefix>mlflow/
    case_maker: Any = None  # case_api.CaseMaker: making cases and members (root agent, MLflow)
    review: Any = None  # review_api.ReviewParts: the reviewer registry and decisions, made at start
    overview: Overview | None = None  # the start page's cached case status (made on first use)
    # One worker: appends (fsync) stay off the event loop and never overlap.
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="idsp-service")
    )

    def cases_of(self, user: str, groups=()) -> list[dict[str, Any]]:
        """The user's cases from the service's registry: id, title, zaaknummer, case_type,
        path, role ("owner" or "member"). Blocking (reads a file): call it through ``run``."""
        return self.cases.of(user, groups)

    async def run(self, fn, *args, **kw):
        return await asyncio.get_running_loop().run_in_executor(self.pool, partial(fn, *args, **kw))


class ApiError(web.HTTPError):
    def __init__(self, status: int, message: str, fix: str = ""):
        super().__init__(status, "%s", message)  # message may hold '%': never a format string
        self.message = message
        self.fix = fix


class _Handler(HubOAuthenticated, web.RequestHandler):
    def initialize(self, service: Service) -> None:
        self.service = service
        self.hub_auth = service.hub_auth

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header(
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        )
        self.set_header("Cache-Control", "no-store")

    async def prepare(self) -> None:
        self._refused_model = await resolve_user(self)


class _Api(_Handler):
    def actor(self) -> dict[str, Any]:
        user = self.current_user
        if user is None:
            refused = self._refused_model
            if refused:
                raise ApiError(
                    403,
                    f"{refused.get('kind', 'user')} {refused.get('name')!r} may not use the platform "
                    f"service: the hub did not grant the scope {ACCESS_SCOPE}",
                    fix="The platform admin checks the hub's roles (docs/service.md)",
                )
            raise ApiError(
                401,
                "no hub identity in this request",
                fix="Send the server's own token (Authorization: token $JUPYTERHUB_API_TOKEN), "
                "or sign in through the hub at /hub/login",
            )
        if user.get("kind", "user") != "user":
            raise ApiError(
                403,
                f"only hub users act through the platform service, not {user.get('kind')} {user['name']!r}",
            )
        return user

    def json_body(self) -> dict[str, Any]:
        if len(self.request.body) > MAX_BODY:
            raise ApiError(413, f"the request body is over {MAX_BODY // 1024} KiB")
        try:
            body = json.loads(self.request.body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"the request body is not JSON ({exc})") from None
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return body

    def send(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(data, ensure_ascii=False))

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        body = {"error": getattr(exc, "message", None) or self._reason, "status": status_code}
        if getattr(exc, "fix", ""):
            body["fix"] = exc.fix
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(body, ensure_ascii=False))


class WhoAmI(_Api):
    async def get(self) -> None:
        user = self.actor()
        self.send(
            {
                "name": user["name"],
                "groups": sorted(user.get("groups") or []),
                "admin": bool(user.get("admin")),
                "kind": "user",
                "mode": "hub",
            }
        )


class Cases(_Api):
    async def get(self) -> None:
        user = self.actor()
        try:
            cases = await self.service.run(
                self.service.cases.of, user["name"], user.get("groups") or []
            )
        except IndexUnreadable as exc:
            raise ApiError(503, exc.message) from None
        self.send({"cases": cases})


class Audit(_Api):
    async def post(self) -> None:
        user = self.actor()
        name = user["name"]
        body = self.json_body()
        unknown = sorted(set(body) - BODY_FIELDS)
        if unknown:
            raise ApiError(
                400,
                f"unknown field(s) {', '.join(unknown)}; an audit event has {', '.join(sorted(BODY_FIELDS))}",
            )
        if "actor" in body and body["actor"] != name:
            raise ApiError(
                403,
                f"this request names {body['actor']!r} as the actor, but the hub proved that you are "
                f"{name!r}: the platform records the signed-in user as actor, never a name from the request",
                fix="Leave `actor` out",
            )
        event = body.get("event")
        if not isinstance(event, str) or not event:
            raise ApiError(
                400, "`event` is missing", fix=f"Send one of {', '.join(sorted(USER_EVENTS))}"
            )
        if event not in USER_EVENTS:
            raise ApiError(
                403,
                f"users cannot record {event!r} events; through this API they record "
                f"{', '.join(sorted(USER_EVENTS))} (decisions come from the service's review code)",
            )
        case_id = body.get("case_id")
        if not isinstance(case_id, str) or not case_id:
            raise ApiError(400, "`case_id` is missing: every user event belongs to a case")
        data = body.get("data") or {}
        if not isinstance(data, dict):
            raise ApiError(400, "`data` must be a JSON object")
        clash = sorted(set(data) & RESERVED_KEYS)
        if clash:
            raise ApiError(
                400, f"`data` may not set {', '.join(clash)}: the service fills those in"
            )
        try:
            mine = await self.service.run(
                self.service.cases.is_member, name, user.get("groups") or [], case_id
            )
        except IndexUnreadable as exc:
            raise ApiError(503, exc.message) from None
        if not mine:  # the same answer for a case that does not exist: no probing for ids
            raise ApiError(
                403, f"case {case_id!r} is not one of your cases", fix="`GET api/cases` lists yours"
            )
        try:
            entry = await self.service.run(
                self.service.log.append, event, actor=name, case_id=case_id, data=data
            )
        except LogMissing as exc:
            raise ApiError(409, exc.what, fix=exc.fix or "") from None
        self.send(
            {k: entry[k] for k in ("seq", "ts", "event", "actor", "case_id", "hash")}, status=201
        )


class AuditVerify(_Api):
    async def get(self) -> None:
        self.actor()
        self.send(await self.service.run(self.service.log.verify))


class PageHandler(PageMixin, _Handler):
    """A Dutch page in the service's layout (``pages.base.html``): browsers without the
    hub's login go to it; a user the hub did not grant the service gets a 403 page."""

    def get_current_user(self):
        if self._refused_model:
            raise web.HTTPError(
                403, "%s", f"{self._refused_model.get('name')} mag de platformdienst niet gebruiken"
            )
        return super().get_current_user()


class StartPage(PageHandler):
    """``<prefix>``: my cases with their checklist status, what awaits me, links onward."""

    AUDIT = {"intact": "intact", "broken": "BESCHADIGD", "missing": "ONTBREEKT"}

    @web.authenticated
    async def get(self) -> None:
        user = self.current_user
        loop = asyncio.get_running_loop()
        # Reads only: the default pool, so a slow first page never holds up an append.
        data, problem = await loop.run_in_executor(None, start_data, self.service, user)
        report = await loop.run_in_executor(None, self.service.log.verify)
        self.send_page(
            "start.html", title="Startpagina", active="start",
            cases=data.cases if data else [], waiting=data.waiting if data else [],
            reviewer_roles=[role_label(r) for r in data.reviewer_roles] if data else [],
            cases_problem=problem, pending_signups=None,
            audit_status=self.AUDIT[report["status"]], audit_entries=report["entries"],
        )


def _overview(service: Service) -> Overview:
    """The start page's cached case status, judged with the service's own trust (its audit
    log and reviewer registry, ``service.review``), never ``platform.yaml``."""
    if service.overview is None:
        def config() -> Any:
            return service.review.decisions.config if service.review else None

        def trust_files() -> list[Path]:
            reg = [Path(service.review.registry.path)] if service.review else []
            return [service.log.path, service.log.head, *reg]

        store = Path(service.log.folder).parent / "start-page.json"  # the service's own state
        service.overview = Overview(config, trust_files, store)
    return service.overview


def start_data(service: Service, user: dict[str, Any]) -> tuple[StartData | None, str]:
    """The start page's data for ``user`` (blocking: reads files), or the Dutch line that
    says why the case list cannot be shown."""
    name = user["name"]
    try:
        cases = service.cases.of(name, user.get("groups") or [])
    except IndexUnreadable:
        return None, "De zakenlijst is nu niet leesbaar voor de platformdienst; de beheerder is gewaarschuwd."
    # The roles of an active key, and (as on "Te beoordelen") the checklists of my own cases.
    roles = tuple(service.review.registry.roles_of(name)) if service.review is not None else ()
    data = _overview(service).build(
        name, cases, hub=hub_root(service.prefix), prefix=service.prefix, reviewer_roles=roles,
    )
    return data, ""


def warm_start_page(service: Service) -> None:
    try:
        _overview(service).warm(_all_cases(service) or [])
    except Exception:  # a thread of its own: say it in the log, the page judges on demand
        log.exception("judging the cases ahead of the start page failed")


def _all_cases(service: Service) -> list[dict[str, Any]] | None:
    """Every case of the service's case registry (id, path, title ...)."""
    registry = getattr(service.cases, "registry", None)  # the case registry of issue 11
    if registry is None:
        return None
    return [{**case, "id": case_id} for case_id, case in registry.load().items() if case.get("path")]


class OAuthCallback(HubOAuthCallbackHandler):
    def initialize(self, service: Service) -> None:
        self.hub_auth = service.hub_auth


def make_app(service: Service, *, cookie_secret: bytes, extra_routes: Sequence[tuple] = ()) -> web.Application:
    """The service's routes; ``extra_routes`` are those of the modules that build on the
    handlers here (the review API and pages: ``review_api.all_routes``)."""
    p = service.prefix
    kw = {"service": service}
    if service.review is not None:  # on the hub: judge every case before the first visitor
        threading.Thread(target=warm_start_page, args=(service,), daemon=True, name="idsp-warm").start()
    return web.Application(
        [
            *extra_routes,  # first: case_api's api/cases (GET and POST) replaces the list below
            (p, StartPage, kw),
            (p + "oauth_callback", OAuthCallback, kw),
            (p + "api/whoami", WhoAmI, kw),
            (p + "api/cases", Cases, kw),
            (p + "api/audit", Audit, kw),
            (p + "api/audit/verify", AuditVerify, kw),
            *static_routes(p),
            *(mlflow_routes(p, service.hub_auth, service.mlflow) if service.mlflow else []),
        ],
        cookie_secret=cookie_secret,
        login_url=service.hub_auth.login_url,
    )
