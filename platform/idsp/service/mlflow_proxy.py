"""MLflow through the hub: the platform service forwards ``<prefix>mlflow/...`` to the MLflow
server as the user the hub proved, with that user's own MLflow login.

Rule: who is calling comes from ``HubOAuth`` only (the server's token, or the service's
cookie after the hub's login); the request's own ``Authorization`` and cookies never reach
MLflow. The service adds the caller's MLflow basic-auth login, derived from the platform's
MLflow user key (``idsp.hub.mlflow_password``), so MLflow's own per-user permissions still
decide what each user reads: nobody gets a second password, and nobody gets more than their
own account. With the cookie, only reads pass (GET, and the POSTs MLflow uses for searches);
writes need a token, so a page elsewhere cannot make a signed-in browser write.

What crosses, and what does not (docs/service.md, "What the service guards against"):
credentials go to MLflow only after the socket on its port was found to be MLflow's account
(``idsp.listener``; a local user who binds the port while MLflow is down gets nothing); the
browser's ``Origin``, ``Referer`` and ``X-Forwarded-*`` never reach MLflow, and MLflow's CORS
answers never reach the browser (the UI is same-origin with the hub); MLflow's Assistant,
which trusts every loopback caller and so every user behind this proxy, is refused; a
``Location`` pointing into MLflow is rewritten to the mount point the request came through,
one pointing anywhere else is dropped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx
from jupyterhub.services.auth import HubOAuth, HubOAuthenticated
from tornado import web
from traitlets import Unicode

from idsp import listener
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
# Not forwarded to MLflow: where the browser says the request comes from (MLflow's CORS and
# host checks trust localhost, and every request from here is localhost), and what the hub's
# proxy says about the client (uvicorn takes X-Forwarded-For from loopback as the client).
REQUEST_DROP = HOP_HEADERS | {"origin", "referer", "forwarded", "x-real-ip"}
# Not passed back as they are: MLflow's CORS answers (Access-Control-*, which MLflow sends
# for localhost:* with credentials) and redirects (rewritten by rewrite_location).
RESPONSE_DROP = HOP_HEADERS | {"location"}
# MLflow's Assistant serves any caller on loopback; behind this proxy that is every user.
REFUSED_SEGMENTS = (("mlflow", "assistant"),)
log = logging.getLogger("idsp.service.mlflow")
# The service reads at most 64 KiB of a request body (its HTTP server's limit); MLflow's API
# through the hub gets more (a batch of metrics, a small artifact), read as it streams in.
MAX_PROXY_BODY = 32 * 1024 * 1024
# POSTs of MLflow's REST API and UI that only read (searches, bulk metric reads); the UI
# sends them with the cookie and without the hub's XSRF token.
READ_POSTS = ("/search", "/search-datasets", "/get-history-bulk-interval", "/get-batch")


@dataclass(frozen=True)
class MlflowUpstream:
    url: str  # the MLflow server on loopback, e.g. http://127.0.0.1:5000
    user_key: str  # the platform's MLflow user key (secret)
    timeout: float = 60.0
    also_at: tuple[str, ...] = ()  # further mount points, e.g. the hub's /services/mlflow/
    owners: frozenset[int] = frozenset({0})  # whose socket on MLflow's port gets passwords


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


def _forwarded_header(key: str) -> bool:
    k = key.lower()
    return k not in REQUEST_DROP and not k.startswith("x-forwarded-")


def _refused_path(path: str) -> tuple[int, str]:
    """(status, why) when ``path`` (decoded) is never forwarded, else (0, "")."""
    # tornado hands over the path decoded: an encoded ? or # (`runs/delete%23/search`)
    # would end the path early on the way to MLflow, after the read/write check saw a
    # search. No MLflow endpoint has them, nor dot segments.
    parts = path.split("/")
    if any(c in path for c in "?#\\") or any(ord(c) < 32 for c in path) or {".", ".."} & set(parts):
        return 400, "this path has an encoded ?, #, backslash, control character or dot segment, which MLflow never uses"
    words = [p.lower() for p in parts if p]
    for refused in REFUSED_SEGMENTS:
        if any(tuple(words[i : i + len(refused)]) == refused for i in range(len(words))):
            return 403, ("MLflow's Assistant is switched off on the hub: it trusts every caller on the "
                         "server itself, and through the hub that is every user")  # fmt: skip
    return 0, ""


def rewrite_location(location: str, upstream: str, request_url: str, mount: str) -> str | None:
    """A redirect from MLflow as the browser must see it: into ``mount`` if it points into
    MLflow (a full URL, or a path from MLflow's root), None if it points anywhere else."""
    target = urlsplit(urljoin(request_url, location))
    base = urlsplit(upstream.rstrip("/") + "/")
    if (target.scheme, target.netloc) != (base.scheme, base.netloc) or not (target.path + "/").startswith(base.path):
        return None
    moved = mount + target.path[len(base.path) :]
    return moved + (f"?{target.query}" if target.query else "") + (f"#{target.fragment}" if target.fragment else "")


@web.stream_request_body
class MlflowProxy(HubOAuthenticated, web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")

    def initialize(
        self, hub_auth: HubOAuth, upstream: MlflowUpstream, client: httpx.AsyncClient, mount: str = ""
    ) -> None:
        self.hub_auth = hub_auth
        self.upstream = upstream
        self.client = client
        self.mount = mount  # where this route is, e.g. /services/mlflow/

    def check_xsrf_cookie(self) -> None:
        # Reads are safe from cross-site requests (the page cannot read the answer); writes
        # with the cookie keep JupyterHub's XSRF check.
        if not _is_read(self.request.method or "", self.request.path):
            super().check_xsrf_cookie()

    async def prepare(self) -> None:
        self._body = bytearray()
        length = self.request.headers.get("Content-Length", "0")
        if not length.isdigit() or int(length) > MAX_PROXY_BODY:
            self._too_large()
            return
        self.request.connection.set_max_body_size(MAX_PROXY_BODY)  # type: ignore[union-attr]
        self._refused = await resolve_user(self)

    def _too_large(self) -> None:
        self._fail(413, f"a request to MLflow through the hub may carry at most {MAX_PROXY_BODY // 2**20} MiB",
                   "Log large artifacts from your server, which talks to MLflow directly")  # fmt: skip

    def data_received(self, chunk: bytes) -> None:
        if len(self._body) + len(chunk) > MAX_PROXY_BODY:  # chunked: no Content-Length said so
            if not self._finished:
                self._too_large()
            return
        self._body += chunk

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
        if self._finished:  # refused while the body came in (too large)
            return
        status, why = _refused_path(path)
        if status:
            self._fail(status, why, "Call the MLflow endpoint by its plain path")
            return
        user = await self._user()
        if user is None:
            return
        name = user["name"]
        headers = {k: v for k, v in self.request.headers.get_all() if _forwarded_header(k)}
        url = f"{self.upstream.url.rstrip('/')}/{path}"
        if self.request.query:
            url += "?" + self.request.query
        request = self.client.build_request(
            self.request.method or "GET", url, headers=headers, content=bytes(self._body) or None,
            timeout=self.upstream.timeout,
        )  # fmt: skip
        try:  # before the user's password goes out: is that MLflow on the port?
            listener.check(self.upstream.url, self.upstream.owners, "the MLflow server")
        except listener.ListenerNotTrusted as exc:
            log.error("MLflow's port is held by another account; nothing sent: %s", exc.what)
            self._fail(502, exc.what, exc.fix or "")
            return
        except listener.NotListening:
            self._fail(502, "the MLflow server does not answer (nothing listens on its port)",
                       "The platform admin checks the `mlflow` service of the hub")  # fmt: skip
            return
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
                if key.lower() == "location":
                    moved = rewrite_location(value, self.upstream.url, url, self.mount)
                    if moved is not None:
                        self.set_header("Location", moved)
                    continue
                if key.lower() in RESPONSE_DROP or key.lower().startswith("access-control-"):
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
    return [(at + "(.*)", MlflowProxy, {**kw, "mount": at}) for at in (prefix + "mlflow/", *upstream.also_at)]
