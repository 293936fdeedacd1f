"""The platform service on a thread, beside a stand-in for the hub's ``/hub/api/user``.

The service under test is the real tornado app with JupyterHub's real ``HubOAuth``; only
the hub is a stand-in: a token table that answers what the hub would (the user model, or
403 for a token it does not know).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from pathlib import Path

import httpx
from idsp.hub.case_registry import CaseRegistry
from idsp.service import ACCESS_SCOPE, PREFIX
from idsp.service.app import Service, make_app
from idsp.service.auditlog import AuditLog
from idsp.service.case_api import routes as case_routes
from idsp.service.case_pages import routes as case_page_routes
from idsp.service.cases import CaseDirectory
from idsp.service.review_api import all_routes as review_routes
from jupyterhub.services.auth import HubOAuth
from tornado import httpserver, netutil, web

_TOKEN = re.compile(r"^token (\S+)$")


def user_model(name: str, groups=(), *, scopes=(ACCESS_SCOPE,), kind: str = "user") -> dict:
    return {
        "kind": kind,
        "name": name,
        "admin": False,
        "groups": list(groups),
        "scopes": [*scopes, f"read:users:name!user={name}", f"read:users:groups!user={name}"],
    }


class HubTokenTable(web.RequestHandler):
    """``GET /hub/api/user`` as the hub answers it: the model behind a known token, else 403."""

    def initialize(self, tokens: dict[str, dict]) -> None:
        self.tokens = tokens

    def get(self) -> None:
        m = _TOKEN.match(self.request.headers.get("Authorization", ""))
        model = self.tokens.get(m.group(1)) if m else None
        if model is None:
            self.set_status(403)
            self.finish(json.dumps({"status": 403, "message": "not a token of this hub"}))
            return
        self.finish(json.dumps(model))


class ServedService:
    def __init__(self, state: Path, index: Path, cases_root: Path, tokens: dict[str, dict]):
        self.tokens = tokens
        self.log = AuditLog(state / "audit")
        self.log.open()
        self.cases = CaseDirectory(index, cases_root, CaseRegistry.in_state(state))
        self.cases.import_index()  # as the service does at start
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _listen(self, app: web.Application) -> int:
        sockets = netutil.bind_sockets(0, "127.0.0.1")
        server = httpserver.HTTPServer(app)
        server.add_sockets(sockets)
        return sockets[0].getsockname()[1]

    async def _start(self) -> None:
        hub_port = self._listen(
            web.Application([("/hub/api/user", HubTokenTable, {"tokens": self.tokens})])
        )
        hub_auth = HubOAuth(
            api_url=f"http://127.0.0.1:{hub_port}/hub/api",
            api_token="the-service-own-token",
            hub_prefix="/hub/",
            base_url=PREFIX,
            oauth_client_id="service-idsp",
            access_scopes={ACCESS_SCOPE},
            cache_max_age=60,
        )
        self.service = Service(hub_auth, self.log, self.cases)
        port = self._listen(
            make_app(self.service, cookie_secret=b"x" * 32, extra_routes=[*case_routes(PREFIX, self.service), *case_page_routes(PREFIX, self.service), *review_routes(self.service)])
        )
        self.url = f"http://127.0.0.1:{port}{PREFIX}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()

    def __enter__(self) -> ServedService:
        self._thread.start()
        assert self._ready.wait(10), "service did not start"
        return self

    def __exit__(self, *exc) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"token {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, follow_redirects=False)
