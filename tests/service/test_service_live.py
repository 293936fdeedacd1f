"""The platform service on a real hub: real `idsp hub up`, real users, real user servers.

Who you are comes from the hub (a server's own token, or the browser's hub login), whatever
the caller's environment says; a forged actor is refused; a user lists only their own cases;
the service's state is out of every user's reach; a deleted log is reported missing.
"""

from __future__ import annotations

import json
import pwd
import socket
import stat
import time
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from tests.hub.conftest import CASE_ID, approved_user

pytestmark = pytest.mark.slow
BOB_CASE = "ce-svctest-bob"


def _port_pair() -> int:
    """A port p with p + 1 free too: the service listens on the proxy API port + 1."""
    for _ in range(50):
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            p = a.getsockname()[1]
            try:
                b.bind(("127.0.0.1", p + 1))
            except OSError:
                continue
            return p
    raise AssertionError("no two free neighbouring ports")


def platform_home(hub_env) -> tuple[Path, str]:
    """Before the hub starts: a platform home other accounts can enter, and free ports for the
    proxy API and the service beside it. Returns the home and the OS account prefix."""
    env, shared, prefix = hub_env
    home = shared / "platform"
    home.mkdir(mode=0o711)
    env["IDSP_HOME"] = str(home)
    env["IDSP_HUB__PROXY_API_PORT"] = str(_port_pair())
    return home, prefix


@pytest.fixture(scope="module", autouse=True)
def platform(hub_env):
    """Before the hub starts: a platform home others can enter, a case of bob's, free ports."""
    home, prefix = platform_home(hub_env)
    shared = hub_env[1]
    case = shared / "cases" / BOB_CASE
    case.mkdir(parents=True)
    (case / "case.yaml").write_text(
        yaml.safe_dump({"id": BOB_CASE, "members": [{"username": "bob"}]})
    )
    index = shared / "index.yaml"
    data = yaml.safe_load(index.read_text())
    data["cases"].append({"id": BOB_CASE, "path": str(case), "title": "Zaak van Bob"})
    index.write_text(yaml.safe_dump(data))
    return home, index, prefix


def _service_up(hub, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{hub.url}/services/idsp/api/whoami", timeout=2).status_code == 401:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the platform service did not answer:\n{hub.log()}")


@pytest.fixture(scope="module")
def alice(hub, admin):
    user = approved_user(hub, admin, "alice")
    _service_up(hub)
    return user


@pytest.fixture(scope="module")
def alice_token(alice) -> str:
    """An API token alice makes for herself through the hub (as a script or the CLI would)."""
    r = alice.api("POST", "/users/alice/tokens", json={"note": "service test"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


@pytest.fixture(scope="module")
def alice_server(hub, alice):
    """alice's own JupyterLab: its $JUPYTERHUB_API_TOKEN is what the library sends."""
    hub.wait_tracking()  # the spawner gives her an MLflow account before the server is ready
    alice.spawn()
    return alice


@pytest.fixture(scope="module")
def bob(hub, admin):
    user = approved_user(hub, admin, "bob")
    _service_up(hub)
    return user


def _in_server(user, code: str) -> dict:
    out = user.run(code)
    assert out["status"] == "ok", out
    return json.loads(out["stdout"].strip().splitlines()[-1])


def _as_account(name: str, code: str) -> dict:
    """Run ``code`` as the OS account ``name``, as a user's server and terminal run."""
    import subprocess
    import sys

    from jupyterhub.spawner import set_user_setuid

    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        preexec_fn=set_user_setuid(name),
        cwd="/",
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _service(hub, token: str):
    from idsp.service.client import HubService

    return HubService(f"{hub.url}/services/idsp/", token)


def test_the_service_runs_as_its_own_account_with_a_private_state(hub, platform, alice):
    home, index, prefix = platform
    account = pwd.getpwnam(f"{prefix}svc-idsp")
    procs = [
        p
        for p in psutil.process_iter(["cmdline", "uids"])
        if p.info["cmdline"]
        and "idsp.service" in p.info["cmdline"]
        and str(home) in " ".join(p.info["cmdline"])
    ]
    assert procs, "no platform service process"
    assert {p.info["uids"].real for p in procs} == {account.pw_uid}
    state = home / "service"
    info = state.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (account.pw_uid, 0o700)
    idx = index.stat()
    assert (idx.st_uid, idx.st_gid, stat.S_IMODE(idx.st_mode)) == (0, account.pw_gid, 0o640)
    # a user's OS account (as the spawner makes it) reads neither the state nor the index
    from idsp.hub import accounts

    name = accounts.os_user_name(prefix, "alice")
    with accounts.OS_LOCK:
        accounts.ensure_account(name, Path(hub.env["IDSP_HUB__HOMES_ROOT"]))
    seen = _as_account(
        name,
        f"""
import json, os
out = {{}}
for what, fn in (("state", lambda: os.listdir({str(state)!r})),
                 ("log", lambda: open({str(state / "audit" / "audit.jsonl")!r}).read()),
                 ("index", lambda: open({str(index)!r}).read())):
    try:
        fn(); out[what] = "read"
    except PermissionError:
        out[what] = "refused"
print(json.dumps(out))
""",
    )
    assert seen == {"state": "refused", "log": "refused", "index": "refused"}


def test_a_users_token_proves_who_it_is_and_lists_only_their_cases(hub, alice_token):
    with _service(hub, alice_token) as service:
        me = service.whoami()
        assert me["name"] == "alice" and f"case-{CASE_ID}" in me["groups"]
        assert [c["id"] for c in service.cases()] == [CASE_ID]  # not bob's case
    r = httpx.get(
        f"{hub.url}/services/idsp/api/whoami", headers={"Authorization": "token not-a-token"}
    )
    assert r.status_code == 401


def test_a_token_with_a_servers_scopes_is_enough_and_one_without_the_service_is_not(hub, alice):
    from idsp.service.hubconfig import SERVER_TOKEN_SCOPES

    def token(scopes):
        r = alice.api("POST", "/users/alice/tokens", json={"note": "scoped", "scopes": scopes})
        assert r.status_code == 201, r.text
        return r.json()["token"]

    with _service(hub, token(SERVER_TOKEN_SCOPES)) as service:
        me = service.whoami()  # the hub adds name and groups for the token's own user
        assert me["name"] == "alice" and f"case-{CASE_ID}" in me["groups"]
    r = httpx.get(
        f"{hub.url}/services/idsp/api/whoami",
        headers={"Authorization": f"token {token(['users:activity!user'])}"},
    )
    assert r.status_code == 403 and "access:services!service=idsp" in r.json()["error"]


def test_a_forged_actor_and_a_decision_are_refused_and_the_chain_verifies(hub, alice_token):
    url = f"{hub.url}/services/idsp/api/audit"
    auth = {"Authorization": f"token {alice_token}"}

    def post(body):
        r = httpx.post(url, json=body, headers=auth)
        return r.status_code, r.json().get("error", r.json().get("actor"))

    forged = post({"event": "answered", "case_id": CASE_ID, "actor": "bob"})
    assert forged[0] == 403 and "'bob'" in forged[1] and "'alice'" in forged[1]
    approved = post({"event": "approved", "case_id": CASE_ID})
    assert approved[0] == 403 and "cannot record 'approved'" in approved[1]
    theirs = post({"event": "answered", "case_id": BOB_CASE})
    assert theirs[0] == 403 and "not one of your cases" in theirs[1]
    assert post({"event": "answered", "case_id": CASE_ID, "data": {"item": "avg-01"}}) == (
        201,
        "alice",
    )
    with _service(hub, alice_token) as service:
        report = service.verify()
    assert report["status"] == "intact" and report["entries"] >= 2


def test_the_browser_login_reaches_the_service_and_lists_only_ones_own_cases(hub, bob):
    r = bob.http.get("/services/idsp/", follow_redirects=True)
    assert r.status_code == 200, r.text[:300]
    assert 'Ingelogd als <strong id="user">bob</strong>' in r.text
    assert BOB_CASE in r.text and CASE_ID not in r.text
    r = bob.http.get("/services/idsp/api/cases")
    assert r.status_code == 200 and [c["id"] for c in r.json()["cases"]] == [BOB_CASE]
    # the service's cookie alone does not make a write: no XSRF token, no identity
    r = bob.http.post("/services/idsp/api/audit", json={"event": "answered", "case_id": BOB_CASE})
    assert r.status_code in (401, 403)


def test_a_servers_own_token_proves_who_it_is_whatever_its_environment_says(alice_server):
    seen = _in_server(
        alice_server,
        """
import json, os
os.environ.update({"IDSP_USER": "ghost", "LOGNAME": "ghost", "USER": "ghost"})
from idsp.service.client import connect
service = connect()
print(json.dumps({"mode": service.mode, "me": service.whoami(), "cases": [c["id"] for c in service.cases()]}))
""",
    )
    assert seen["mode"] == "hub"
    assert seen["me"]["name"] == "alice" and f"case-{CASE_ID}" in seen["me"]["groups"]
    assert seen["cases"] == [CASE_ID]


def test_inside_a_server_the_library_records_as_the_hub_user_whatever_it_is_told(alice_server, platform):
    """IDSP_USER=ghost, LOGNAME, and IDSP_HOME / IDSP_CONFIG pointed into the user's own home
    change neither the actor the service records nor the service the library talks to; a
    forged decision from the library is the service's 403 with its reason."""
    home, _index, _prefix = platform
    seen = _in_server(
        alice_server,
        f"""
import json, os, pathlib, sys, io
sys.stderr = io.StringIO()
url = os.environ["IDSP_SERVICE_URL"]
mine = pathlib.Path.home() / "fake"
(mine / "audit").mkdir(parents=True, exist_ok=True)
(mine / "platform.yaml").write_text("hub:\\n  proxy_api_port: 9100\\n")
os.environ.update({{"IDSP_USER": "ghost", "LOGNAME": "ghost", "USER": "ghost",
                    "IDSP_HOME": str(mine), "IDSP_CONFIG": str(mine / "platform.yaml")}})
from legal_ethics import audit
from legal_ethics.reviewers import current_user
from idsp.errors import Refused
from idsp.service.link import hub_service
entry = audit.append("answered", actor=current_user(), case_id={CASE_ID!r}, item="avg-01")
try:
    hub_service().audit("approved", case_id={CASE_ID!r})
    forged = "accepted"
except Refused as exc:
    forged = str(exc)
print(json.dumps({{"entry": entry, "url": hub_service().url, "set": url, "forged": forged,
                  "note": sys.stderr.getvalue(), "local": (mine / "audit" / "audit.jsonl").exists()}}))
""",
    )
    assert seen["entry"]["actor"] == "alice" and seen["entry"]["event"] == "answered"
    assert seen["url"].rstrip("/") == seen["set"].rstrip("/")
    assert "$IDSP_USER=ghost is ignored on the hub; you are alice" in seen["note"]
    assert "cannot record 'approved'" in seen["forged"]
    assert not seen["local"]  # the user's own files got no copy that could pass for the record
    log = [json.loads(x) for x in (home / "service" / "audit" / "audit.jsonl").read_text().splitlines()]
    recorded = next(e for e in log if e["hash"] == seen["entry"]["hash"])
    assert recorded["actor"] == "alice" and recorded["os_user"] != "ghost"
    assert not any(e.get("actor") == "ghost" for e in log)


def test_a_deleted_log_is_reported_missing_and_nothing_new_starts(hub, platform, alice_token):
    home, _index, _prefix = platform
    log = home / "service" / "audit" / "audit.jsonl"
    assert log.exists()
    log.unlink()
    from idsp.errors import Refused

    with _service(hub, alice_token) as service:
        report = service.verify()
        assert report["status"] == "missing" and report["entries"] == 0
        with pytest.raises(Refused, match="missing"):
            service.audit("answered", case_id=CASE_ID)
    assert not log.exists()
