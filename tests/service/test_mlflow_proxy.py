"""MLflow through the hub: the platform service forwards `<prefix>mlflow/...` to a real MLflow
server (`idsp tracking serve --auth`) as the user the hub proved, with that user's own
derived MLflow login, so MLflow's per-user permissions still decide. The service is the real
tornado app with JupyterHub's real HubOAuth; the hub is the token table of servicekit."""

from __future__ import annotations

import asyncio
import secrets
import threading

import httpx
import pytest
from idsp.hub.mlflow_password import user_password
from idsp.hub.tracking import ADMIN_USER, ExperimentRecord, TrackingAdmin
from idsp.service import ACCESS_SCOPE, PREFIX
from idsp.service.app import Service, make_app
from idsp.service.auditlog import AuditLog
from idsp.service.cases import CaseDirectory
from idsp.service.mlflow_proxy import MlflowUpstream
from jupyterhub.services.auth import HubOAuth
from testkit.mlflow_server import start_server
from tornado import httpserver, netutil, web

from tests.service.conftest import TOKENS
from tests.service.servicekit import HubTokenTable, user_model

KEY = secrets.token_hex(32)


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory):
    password = secrets.token_urlsafe(18)
    home = tmp_path_factory.mktemp("mlflow-proxy")
    server = start_server(home, "--auth",
                          env={"MLFLOW_TRACKING_USERNAME": ADMIN_USER, "MLFLOW_TRACKING_PASSWORD": password})
    admin = TrackingAdmin(server.url, password, ExperimentRecord(home / "experiments.json"))
    asyncio.run(admin.provision("alice", user_password(KEY, "alice"), ["ce-1"]))
    asyncio.run(admin.provision("bob", user_password(KEY, "bob"), ["ce-2"]))
    yield server
    server.stop()


def _listen(app) -> int:
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    httpserver.HTTPServer(app).add_sockets(sockets)
    return sockets[0].getsockname()[1]


@pytest.fixture(scope="module")
def proxy(mlflow, tmp_path_factory):
    tokens = {**TOKENS, "tok-carol": user_model("carol", [])}  # carol never started a server
    state = tmp_path_factory.mktemp("state")
    loop, ready, box = asyncio.new_event_loop(), threading.Event(), {}

    async def start() -> None:
        hub_port = _listen(web.Application([("/hub/api/user", HubTokenTable, {"tokens": tokens})]))
        hub_auth = HubOAuth(api_url=f"http://127.0.0.1:{hub_port}/hub/api", api_token="svc-token",
                            hub_prefix="/hub/", base_url=PREFIX, oauth_client_id="service-idsp",
                            access_scopes={ACCESS_SCOPE}, cache_max_age=60)
        log = AuditLog(state / "audit")
        log.open()
        service = Service(hub_auth, log, CaseDirectory(state / "index.yaml", state / "cases"),
                          mlflow=MlflowUpstream(mlflow.url, KEY, also_at=("/services/mlflow/",)))
        port = _listen(make_app(service, cookie_secret=b"x" * 32))
        box["url"] = f"http://127.0.0.1:{port}{PREFIX}mlflow/"
        box["hub_path"] = f"http://127.0.0.1:{port}/services/mlflow/"

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield box["url"], box["hub_path"]
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def _get(url, token=None, **kw) -> httpx.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    headers.update(kw.pop("headers", {}))
    return httpx.get(url, headers=headers, timeout=30, follow_redirects=False, **kw)


def _by_name(proxy, name, token, **kw) -> httpx.Response:
    return _get(f"{proxy}api/2.0/mlflow/experiments/get-by-name", token, params={"experiment_name": name}, **kw)


@pytest.mark.slow
def test_each_user_reaches_mlflow_as_themselves_with_no_second_password(proxy):
    proxy, _ = proxy
    assert _by_name(proxy, "ce-1", "tok-alice").status_code == 200
    refused = _by_name(proxy, "ce-2", "tok-alice")  # bob's case: MLflow's own permissions decide
    assert refused.status_code == 403, refused.text
    assert _by_name(proxy, "ce-2", "tok-bob").status_code == 200
    # writes with the server's token: a run in her own case, searched back
    exp = _by_name(proxy, "ce-1", "tok-alice").json()["experiment"]["experiment_id"]
    r = httpx.post(f"{proxy}api/2.0/mlflow/runs/create", json={"experiment_id": exp},
                   headers={"Authorization": "token tok-alice"}, timeout=30)
    assert r.status_code == 200, r.text
    r = httpx.post(f"{proxy}api/2.0/mlflow/runs/search", json={"experiment_ids": [exp]},
                   headers={"Authorization": "token tok-alice"}, timeout=30)
    assert len(r.json()["runs"]) == 1


@pytest.mark.slow
def test_without_a_hub_identity_nothing_reaches_mlflow(proxy):
    proxy, _ = proxy
    # an API call without a token: a JSON 401 that says what to send
    r = httpx.post(f"{proxy}api/2.0/mlflow/runs/search", json={}, timeout=30)
    assert r.status_code == 401
    assert r.json()["error"] == "no hub identity in this request"
    assert "JUPYTERHUB_API_TOKEN" in r.json()["fix"]
    # someone's MLflow password in a Basic header is no hub identity, and is never forwarded
    basic = _by_name(proxy, "ce-1", None, headers={"Authorization": "Basic " + "YWxpY2U6eA=="})
    assert basic.status_code == 401 and "www-authenticate" not in basic.headers
    # a browser without the hub's login is sent through it
    page = _get(proxy)
    assert page.status_code == 302 and "/hub/api/oauth2/authorize" in page.headers["location"]


@pytest.mark.slow
def test_refused_callers_read_why(proxy):
    proxy, _ = proxy
    r = _by_name(proxy, "ce-1", "tok-mallory")
    assert r.status_code == 403 and "'mallory' may not use MLflow through the hub" in r.json()["error"]
    r = _by_name(proxy, "ce-1", "tok-culler")
    assert r.status_code == 403 and "only hub users reach MLflow" in r.json()["error"]
    # no MLflow account yet: a clear answer, never MLflow's password prompt
    r = _by_name(proxy, "ce-1", "tok-carol")
    assert r.status_code == 403 and "www-authenticate" not in r.headers
    assert r.json()["error"] == "MLflow has no account for 'carol' yet: the hub makes it when your server starts"


@pytest.mark.slow
def test_a_write_with_the_cookie_needs_the_xsrf_token(proxy):
    from idsp.service.mlflow_proxy import _is_read

    proxy, _ = proxy
    r = httpx.post(f"{proxy}api/2.0/mlflow/experiments/create", json={"name": "x"},
                   cookies={"service-idsp": "a-browser-cookie"}, timeout=30)
    assert r.status_code == 403
    assert r.json()["error"].startswith("MLflow through the hub's login is read-only")
    # an encoded # or ? would end the forwarded path early, after the check saw a search
    for sneaky in ("ajax-api/2.0/mlflow/runs/delete%23/search", "ajax-api/2.0/mlflow/upload-artifact%3Frun_uuid=x%26z=/search"):
        r = httpx.post(f"{proxy}{sneaky}", content=b"{}", cookies={"service-idsp": "a-browser-cookie"}, timeout=30)
        assert r.status_code == 400 and "encoded ?, #" in r.json()["error"], sneaky

    assert _is_read("POST", "/services/idsp/mlflow/ajax-api/2.0/mlflow/runs/search")
    assert _is_read("GET", "/services/idsp/mlflow/api/2.0/mlflow/experiments/get")
    assert not _is_read("POST", "/services/idsp/mlflow/api/2.0/mlflow/runs/create")
    assert not _is_read("POST", "/services/idsp/mlflow/api/2.0/mlflow/experiments/delete")


@pytest.mark.slow
def test_the_ui_is_served_at_the_hubs_mlflow_path(proxy):
    _, hub_path = proxy
    # the proxy strips the mount point; MLflow's page names its assets relative to itself,
    # so the UI works below /services/mlflow/ without --static-prefix
    page = _get(hub_path, "tok-alice")
    assert page.status_code == 200 and 'src="static-files/static/js/' in page.text
    assert page.headers.get_list("content-type") == ["text/html; charset=utf-8"]
    script = page.text.split('src="', 1)[1].split('"', 1)[0]
    js = _get(hub_path + script, "tok-alice")
    # one Content-Type, MLflow's: a browser refuses a script or style sent as text/html
    assert js.status_code == 200 and len(js.headers.get_list("content-type")) == 1
    assert "javascript" in js.headers["content-type"]
    style = page.text.split('<link href="', 1)[1].split('"', 1)[0]
    css = _get(hub_path + style, "tok-alice")
    assert css.status_code == 200 and css.headers.get_list("content-type") == ["text/css; charset=utf-8"]
    r = httpx.post(f"{hub_path}ajax-api/2.0/mlflow/experiments/search", json={"max_results": 10},
                   headers={"Authorization": "token tok-alice"}, timeout=30)
    assert [e["name"] for e in r.json()["experiments"]] == ["ce-1"]  # only her own
