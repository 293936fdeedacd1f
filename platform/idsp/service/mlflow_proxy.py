"""MLflow through the hub: the platform service forwards ``<prefix>mlflow/...`` to the MLflow
server as the user the hub proved, with that user's own MLflow login.

Rule: who is calling comes from ``HubOAuth`` only (the server's token, or the service's
cookie after the hub's login); the request's own ``Authorization`` and cookies never reach
MLflow. The service adds the caller's MLflow basic-auth login, derived from the platform's
MLflow user key (``idsp.hub.mlflow_password``), so MLflow's own per-user permissions still
decide what each user reads: nobody gets a second password, and nobody gets more than their
own account. With the cookie, only reads pass (GET, and the POSTs MLflow uses for searches);
writes need a token, so a page elsewhere cannot make a signed-in browser write.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import httpx
from jupyterhub.services.auth import HubOAuth, HubOAuthenticated
from tornado import web
from traitlets import Unicode

from idsp.hub.mlflow_password import user_password
from idsp.service.hubuser import resolve_user

# Not forwarded either way: they describe one hop, or a login that is the hub's business.
HOP_HEADERS = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "content-length", "authorization", "cookie",
        "set-cookie", "www-authenticate",
    }
)  # fmt: skip
# POSTs of MLflow's REST API and UI that only read (searches, bulk metric reads); the UI
# sends them with the cookie and without the hub's XSRF token.
READ_POSTS = ("/search", "/search-datasets", "/get-history-bulk-interval", "/get-batch")


@dataclass(frozen=True)
class MlflowUpstream:
    url: str  # the MLflow server on loopback, e.g. http://127.0.0.1:5000
    user_key: str  # the platform's MLflow user key (secret)
    timeout: float = 60.0
    also_at: tuple[str, ...] = ()  # further mount points, e.g. the hub's /services/mlflow/


class SharedCookieHubOAuth(HubOAuth):
    """HubOAuth whose login cookie is set on ``shared_cookie_path`` (e.g. ``/services/``)
    instead of the service's own prefix, so it reaches the further mount points too (the
    hub's ``/services/mlflow/``). Only hub services live below that path, never a user's
    server, and the cookie is the service's own (``service-idsp``): no other service reads it."""

    shared_cookie_path = Unicode("")

    @property
    def cookie_path(self) -> str:
        return self.shared_cookie_path or super().cookie_path


def _is_read(method: str, path: str) -> bool:
    return method in ("GET", "HEAD", "OPTIONS") or (method == "POST" and path.endswith(READ_POSTS))


class MlflowProxy(HubOAuthenticated, web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

    def initialize(self, hub_auth: HubOAuth, upstream: MlflowUpstream, client: httpx.AsyncClient) -> None:
        self.hub_auth = hub_auth
        self.upstream = upstream
        self.client = client

    def check_xsrf_cookie(self) -> None:
        # Reads are safe from cross-site requests (the page cannot read the answer); writes
        # with the cookie keep JupyterHub's XSRF check.
        if not _is_read(self.request.method or "", self.request.path):
            super().check_xsrf_cookie()

    async def prepare(self) -> None:
        self._refused = await resolve_user(self)

    def _fail(self, status: int, error: str, fix: str = "") -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps({"error": error, "fix": fix, "status": status}, ensure_ascii=False))

    async def _user(self) -> dict | None:
        user = self.current_user
        if user is None:
            if self._refused:
                self._fail(403, f"{self._refused.get('name')!r} may not use MLflow through the hub",
                           "The platform admin checks the hub's roles (docs/service.md)")  # fmt: skip
            elif self.get_cookie(self.hub_auth.cookie_name) and not _is_read(
                self.request.method or "", self.request.path
            ):
                self._fail(403, "MLflow through the hub's login is read-only: a write with the browser's "
                           "cookie needs JupyterHub's XSRF token, which MLflow's page does not send",
                           "Write from your server (the library and the MLflow client use its token)")  # fmt: skip
            elif self.request.method == "GET" and "Authorization" not in self.request.headers:
                self.redirect(self.get_login_url())  # a browser: through the hub's login
            else:
                self._fail(401, "no hub identity in this request",
                           "Send the server's own token (Authorization: token $JUPYTERHUB_API_TOKEN), "
                           "or sign in through the hub at /hub/login")  # fmt: skip
            return None
        if user.get("kind", "user") != "user":
            self._fail(403, f"only hub users reach MLflow through the hub, not {user.get('kind')} {user['name']!r}")
            return None
        return user

    async def _forward(self, path: str) -> None:
        # tornado hands over the path decoded: an encoded ? or # (`runs/delete%23/search`)
        # would end the path early on the way to MLflow, after the read/write check saw a
        # search. No MLflow endpoint has them, so such a request is refused outright.
        if any(c in path for c in "?#\\") or any(ord(c) < 32 for c in path):
            self._fail(400, "this path has an encoded ?, #, backslash or control character, which MLflow never uses",
                       "Call the MLflow endpoint by its plain path")  # fmt: skip
            return
        user = await self._user()
        if user is None:
            return
        name = user["name"]
        headers = {k: v for k, v in self.request.headers.get_all() if k.lower() not in HOP_HEADERS}
        url = f"{self.upstream.url.rstrip('/')}/{path}"
        if self.request.query:
            url += "?" + self.request.query
        request = self.client.build_request(
            self.request.method or "GET", url, headers=headers, content=self.request.body or None,
            timeout=self.upstream.timeout,
        )  # fmt: skip
        auth = (name, user_password(self.upstream.user_key, name))
        try:
            response = await self.client.send(request, auth=auth, stream=True)
        except httpx.TransportError as exc:
            self._fail(502, f"the MLflow server does not answer ({type(exc).__name__})",
                       "The platform admin checks the `mlflow` service of the hub")  # fmt: skip
            return
        try:
            if response.status_code == 401:  # MLflow does not know this user's login (yet)
                self._fail(403, f"MLflow has no account for {name!r} yet: the hub makes it when your server starts",
                           "Start your server once from the hub's home page, then try again")  # fmt: skip
                return
            self.set_status(response.status_code, response.reason_phrase or None)
            seen: set[str] = set()
            for key, value in response.headers.multi_items():
                if key.lower() in HOP_HEADERS:
                    continue
                # set, not add, the first of each: tornado starts every answer with its own
                # Content-Type text/html, and a browser would take that one for MLflow's CSS.
                (self.add_header if key.lower() in seen else self.set_header)(key, value)
                seen.add(key.lower())
            async for chunk in response.aiter_raw():
                self.write(chunk)
                await self.flush()
            self.finish()
        finally:
            await response.aclose()

    async def get(self, path: str) -> None:
        await self._forward(path)

    async def head(self, path: str) -> None:
        await self._forward(path)

    async def post(self, path: str) -> None:
        await self._forward(path)

    async def put(self, path: str) -> None:
        await self._forward(path)

    async def patch(self, path: str) -> None:
        await self._forward(path)

    async def delete(self, path: str) -> None:
        await self._forward(path)


def routes(prefix: str, hub_auth: HubOAuth, upstream: MlflowUpstream) -> list:
    """The proxy's tornado routes: below ``prefix`` (e.g. ``/services/idsp/mlflow/``) and at
    each of ``upstream.also_at``."""
    client = httpx.AsyncClient(follow_redirects=False)
    kw = {"hub_auth": hub_auth, "upstream": upstream, "client": client}
    return [(at + "(.*)", MlflowProxy, kw) for at in (prefix + "mlflow/", *upstream.also_at)]
