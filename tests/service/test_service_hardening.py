"""The holes a review found in the service and its MLflow proxy (issue 11), each closed with a
refusal and its message.

A port squatter here is a real process of a real unprivileged OS account (made with useradd,
removed afterwards) that binds the port of a server that is down and writes down whatever
reaches it; the service is the real tornado app with JupyterHub's real HubOAuth, the MLflow
stand-in (``EchoUpstream``) a tornado app that answers with the headers it got, so what the
proxy passes on, both ways, can be read."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from idsp import listener
from idsp.hub.tracking import ExperimentRecord, TrackingAdmin
from idsp.service import ACCESS_SCOPE, PREFIX
from idsp.service.account import MLFLOW_KEY_FILE
from idsp.service.app import Service, make_app
from idsp.service.auditlog import AuditLog
from idsp.service.cases import CaseDirectory
from idsp.service.link import HubService
from idsp.service.mlflow_proxy import MlflowUpstream, rewrite_location
from jupyterhub.services.auth import HubOAuth
from tornado import httpserver, netutil, web

from tests.hub.conftest import _cleanup_accounts
from tests.service.conftest import TOKENS
from tests.service.servicekit import HubTokenTable

# The squatter: binds the port, answers 200 to everything, and prints each request it got.
SQUAT = r"""
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(8)
print("listening", flush=True)
while True:
    c, _ = s.accept()
    c.settimeout(2)
    try:
        data = c.recv(65536)
    except OSError:
        data = b""
    print("GOT", repr(data), flush=True)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
    c.close()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def squat_account():
    """A local account that is neither root nor the service's: what any hub user is (and,
    for the service's own process, an account that is not root)."""
    import pwd

    prefix = "t" + secrets.token_hex(3) + "-"
    name = prefix + "squat"
    done = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"useradd needs root (CI runs as root): {done.stderr}")
    yield pwd.getpwnam(name)
    _cleanup_accounts(prefix)


class Squatter:
    def __init__(self, account, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        # the system Python: the account needs nothing of ours to squat
        self.proc = subprocess.Popen(["/usr/bin/python3", "-c", SQUAT, str(port)], user=account.pw_uid,
                                     group=account.pw_gid, stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "listening"
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def heard(self) -> str:
        time.sleep(0.3)  # let a request that did arrive be printed
        return "".join(self.lines)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def squatter(squat_account):
    squat = Squatter(squat_account, _free_port())
    yield squat
    squat.stop()


class EchoUpstream(web.RequestHandler):
    """Stands in for MLflow where the test must see what reaches it: the request headers back
    as JSON, MLflow's localhost CORS answer, and redirects into and out of itself."""

    def get(self, path: str) -> None:
        self.set_header("Access-Control-Allow-Origin", "http://localhost:3000")
        self.set_header("Access-Control-Allow-Credentials", "true")
        base = f"{self.request.protocol}://{self.request.host}"
        if path == "redirect-in":
            self.set_header("Location", f"{base}/static-files/index.html?x=1")
        elif path == "redirect-root":
            self.set_header("Location", "/#/experiments/1")
        elif path == "redirect-out":
            self.set_header("Location", "https://elsewhere.example/collect")
        self.finish(json.dumps({"path": path, "headers": dict(self.request.headers)}))


def _listen(app) -> int:
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    httpserver.HTTPServer(app).add_sockets(sockets)
    return sockets[0].getsockname()[1]


def _serve(tmp_path: Path, upstream_url: str | None):
    """The service with MLflow at ``upstream_url`` (a port number is filled in later)."""
    loop, ready, box = asyncio.new_event_loop(), threading.Event(), {}

    async def start() -> None:
        box["echo"] = _listen(web.Application([("/(.*)", EchoUpstream)]))
        hub_port = _listen(web.Application([("/hub/api/user", HubTokenTable, {"tokens": dict(TOKENS)})]))
        hub_auth = HubOAuth(api_url=f"http://127.0.0.1:{hub_port}/hub/api", api_token="svc-token",
                            hub_prefix="/hub/", base_url=PREFIX, oauth_client_id="service-idsp",
                            access_scopes={ACCESS_SCOPE}, cache_max_age=60)  # fmt: skip
        log = AuditLog(tmp_path / "audit")
        log.open()
        url = upstream_url or f"http://127.0.0.1:{box['echo']}"
        service = Service(hub_auth, log, CaseDirectory(tmp_path / "index.yaml", tmp_path / "cases"),
                          mlflow=MlflowUpstream(url, "k" * 64, also_at=("/services/mlflow/",)))  # fmt: skip
        port = _listen(make_app(service, cookie_secret=b"x" * 32))
        box["proxy"] = f"http://127.0.0.1:{port}/services/mlflow/"

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        ready.set()
        loop.run_forever()

    threading.Thread(target=run, daemon=True).start()
    assert ready.wait(10)
    return loop, box


@pytest.fixture
def proxy_to(tmp_path):
    loops = []

    def make(upstream_url: str | None = None) -> str:
        loop, box = _serve(tmp_path, upstream_url)
        loops.append(loop)
        return box["proxy"]

    yield make
    for loop in loops:
        loop.call_soon_threadsafe(loop.stop)


ALICE = {"Authorization": "token tok-alice"}


# 1. Port squatting: no credential goes to a port another local account holds.


def test_the_proxy_sends_no_mlflow_password_to_a_port_squatter(squatter, proxy_to, squat_account):
    proxy = proxy_to(squatter.url)
    r = httpx.get(proxy + "api/2.0/mlflow/experiments/search", headers=ALICE, timeout=30)
    assert r.status_code == 502
    error = r.json()["error"]
    assert error.startswith(f"refusing to send credentials to {squatter.url}: the socket listening on port "
                            f"{squatter.port} belongs to {squat_account.pw_name} (uid {squat_account.pw_uid}), "
                            "not to the MLflow server's account (root (uid 0))")  # fmt: skip
    assert "Nothing was sent" in error and "Tell the platform admin" in r.json()["fix"]
    assert squatter.heard() == ""  # not even a connection


def test_the_library_sends_no_mlflow_password_to_a_port_squatter(squatter, squat_account):
    from idsp.tracking.client import mlflow_client

    with pytest.raises(listener.ListenerNotTrusted) as err:
        mlflow_client(squatter.url)
    assert f"belongs to {squat_account.pw_name} (uid {squat_account.pw_uid})" in err.value.message
    assert "not to the MLflow tracking server's account (root (uid 0))" in err.value.message
    assert err.value.exit_code == 1 and squatter.heard() == ""


def test_the_library_sends_no_hub_token_to_a_squatter_on_the_services_port(squatter, squat_account):
    service = HubService(f"{squatter.url}/services/idsp/", "the-servers-own-token", timeout=5)
    with pytest.raises(listener.ListenerNotTrusted) as err:
        service.whoami()
    assert f"the socket listening on port {squatter.port} belongs to {squat_account.pw_name}" in err.value.message
    assert "not to the platform service's account" in err.value.message
    assert "the-servers-own-token" not in squatter.heard()
    assert squatter.heard() == ""


def test_the_hub_sends_no_mlflow_admin_password_to_a_port_squatter(squatter, squat_account, tmp_path):
    admin = TrackingAdmin(squatter.url, "the-admin-password", ExperimentRecord(tmp_path / "exp.json"))
    with pytest.raises(listener.ListenerNotTrusted, match=f"belongs to {squat_account.pw_name}"):
        asyncio.run(admin.provision("alice", "alices-password", ["ce-1"]))
    heard = squatter.heard()
    # it answered the health check (no credentials there); nothing else reached it
    assert "GET /health" in heard and "the-admin-password" not in heard and "Authorization" not in heard


def test_nobody_listening_is_not_reachable_and_nothing_is_sent():
    port = _free_port()
    with pytest.raises(listener.NotListening, match=f"nothing listens on 127.0.0.1:{port}; nothing was sent"):
        listener.check(f"http://127.0.0.1:{port}/", {0}, "the MLflow server")


def test_off_loopback_and_own_servers_are_not_refused():
    listener.check("https://mlflow.example.org/", {0}, "the MLflow server")  # TLS decides there
    with socket.socket() as s:  # this process's own listener (root's in CI)
        s.bind(("127.0.0.1", 0))
        s.listen()
        listener.check(f"http://localhost:{s.getsockname()[1]}/", listener.own_uids(), "the MLflow server")
        # netlink's answer (the fast way) is the kernel's table's (the fallback)
        port = s.getsockname()[1]
        assert listener.listeners(port) == listener._proc_listeners(port) != []


# 2 and 5. What the proxy passes on, both ways.


def test_the_proxy_strips_cors_and_the_clients_origin_and_forwarding_headers(proxy_to):
    proxy = proxy_to()
    sent = {**ALICE, "Origin": "http://localhost:3000", "Referer": "http://localhost:3000/x",
            "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Host": "localhost:5000", "Forwarded": "for=127.0.0.1",
            "X-Real-IP": "127.0.0.1", "Accept": "application/json"}  # fmt: skip
    r = httpx.get(proxy + "api/2.0/mlflow/experiments/search", headers=sent, timeout=30)
    assert r.status_code == 200
    got = {k.lower() for k in r.json()["headers"]}
    for header in ("origin", "referer", "x-forwarded-for", "x-forwarded-host", "forwarded", "x-real-ip"):
        assert header not in got, header
    assert "accept" in got and "authorization" in got  # the user's MLflow login, not the hub token
    assert r.json()["headers"]["Authorization"].startswith("Basic ")
    assert not [k for k in r.headers if k.lower().startswith("access-control-")]


def test_mlflows_assistant_and_dot_segments_are_refused(proxy_to):
    proxy = proxy_to()
    for path in ("ajax-api/3.0/mlflow/assistant/config", "ajax-api/3.0/MLflow/Assistant/sessions"):
        r = httpx.get(proxy + path, headers=ALICE, timeout=30)
        assert r.status_code == 403, path
        assert r.json()["error"].startswith("MLflow's Assistant is switched off on the hub: it trusts every caller")
    r = httpx.get(proxy + "ajax-api/3.0/mlflow/x/%2e%2e/assistant/config", headers=ALICE, timeout=30)
    assert r.status_code == 400 and "dot segment" in r.json()["error"]


def test_redirects_into_mlflow_stay_below_the_mount_point_and_others_are_dropped(proxy_to):
    proxy = proxy_to()
    r = httpx.get(proxy + "redirect-in", headers=ALICE, timeout=30, follow_redirects=False)
    assert r.headers["location"] == "/services/mlflow/static-files/index.html?x=1"
    r = httpx.get(proxy + "redirect-root", headers=ALICE, timeout=30, follow_redirects=False)
    assert r.headers["location"] == "/services/mlflow/#/experiments/1"
    r = httpx.get(proxy + "redirect-out", headers=ALICE, timeout=30, follow_redirects=False)
    assert "location" not in r.headers
    up = "http://127.0.0.1:5000"
    assert rewrite_location("other", up, up + "/a/b", "/m/") == "/m/a/other"
    assert rewrite_location("http://127.0.0.1:5001/x", up, up + "/", "/m/") is None


# 4. Bodies: the proxy's own limit, said before the body is read.


def test_a_proxied_body_over_the_limit_is_refused_before_it_is_read(proxy_to):
    from idsp.service.mlflow_proxy import MAX_PROXY_BODY

    proxy = proxy_to()
    port = int(proxy.split(":")[2].split("/")[0])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        # headers only: a server that waits for 40 MiB before answering would time out here
        s.sendall(b"POST /services/mlflow/api/2.0/mlflow/runs/log-batch HTTP/1.1\r\nHost: x\r\n"
                  b"Authorization: token tok-alice\r\nContent-Type: application/json\r\n"
                  + f"Content-Length: {MAX_PROXY_BODY + 1}\r\n\r\n".encode())  # fmt: skip
        answer = s.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 413")
    assert "a request to MLflow through the hub may carry at most 32 MiB" in answer


# 3 and 4. The service process itself: the key by file, not dumpable, no 100 MB body buffered.


@pytest.fixture
def open_tmp():
    """A folder the service's account can enter (pytest's own tmp folders are root's 0700)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="idsp-svc-"))
    os.chmod(folder, 0o711)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def _start_service(account, base: Path, key_mode: int = 0o400) -> tuple[subprocess.Popen, int, str]:
    """`python -m idsp.service` as ``account``, as the hub starts it (no hub needed for these)."""
    state = base / "state"
    state.mkdir(mode=0o700)
    key = secrets.token_hex(32)
    (state / MLFLOW_KEY_FILE).write_text(key + "\n")
    os.chmod(state / MLFLOW_KEY_FILE, key_mode)
    for path in (state, state / MLFLOW_KEY_FILE):
        os.chown(path, account.pw_uid, account.pw_gid)
    (base / "index.yaml").write_text("cases: []\n")
    (base / "cases").mkdir()
    port = _free_port()
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
           "JUPYTERHUB_SERVICE_PREFIX": PREFIX, "JUPYTERHUB_API_TOKEN": "svc-token",
           "JUPYTERHUB_API_URL": f"http://127.0.0.1:{_free_port()}/hub/api", "JUPYTERHUB_CLIENT_ID": "service-idsp",
           "JUPYTERHUB_OAUTH_ACCESS_SCOPES": json.dumps([ACCESS_SCOPE])}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-P", "-m", "idsp.service", "--state", str(state), "--case-index", str(base / "index.yaml"),
         "--cases-root", str(base / "cases"), "--mlflow-url", f"http://127.0.0.1:{_free_port()}",
         "--mlflow-at", "/services/mlflow/", "--mlflow-key-file", str(state / MLFLOW_KEY_FILE)],
        env=env, cwd=base, user=account.pw_uid, group=account.pw_gid, extra_groups=[],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    return proc, port, key


def _wait_listening(proc: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the service did not listen within 60 s")


def test_the_service_reads_the_mlflow_key_from_its_own_file_and_is_not_dumpable(squat_account, open_tmp):
    proc, port, key = _start_service(squat_account, open_tmp)
    try:
        _wait_listening(proc, port)
        environ = Path(f"/proc/{proc.pid}/environ")
        assert key not in environ.read_text(errors="replace")  # root reads it; the key is not there
        # not dumpable: the kernel hands /proc/<pid>/environ, mem and ptrace to root alone,
        # so the service's own account (and a process it runs) cannot read the key back
        assert environ.stat().st_uid == 0 and Path(f"/proc/{proc.pid}/mem").stat().st_uid == 0
        # headers of a 50 MB body, and no body: refused at once, nothing waited for or buffered
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(f"POST {PREFIX}api/audit HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n".encode())
            assert s.recv(4096).startswith(b"HTTP/1.1 400 Bad Request")
    finally:
        proc.kill()
        proc.wait(10)
    assert "Content-Length too long" in (proc.stdout.read() if proc.stdout else "")


def test_the_service_refuses_a_key_file_others_can_read(squat_account, open_tmp):
    proc, _, _ = _start_service(squat_account, open_tmp, key_mode=0o440)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "must be a plain file of this account's own with mode 0400 (`idsp hub up` makes it so)" in out


# 4. verify: a page view costs a stat, not a pass over the whole log; tampering is still seen.


def test_verify_reads_the_chain_again_only_when_someone_else_wrote_it(tmp_path):
    log = AuditLog(tmp_path / "audit")
    log.open()
    for i in range(300):
        log.append("answered", actor="alice", case_id="ce-1", data={"item": f"q-{i}"})
    fresh = AuditLog(tmp_path / "audit")  # a restarted service: no verdict yet
    t0 = time.perf_counter()
    first = fresh.verify()
    full = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = fresh.verify()
    cached = time.perf_counter() - t0
    assert first == again and first["status"] == "intact" and first["entries"] == 301
    assert cached * 10 < full, (cached, full)
    # the service's own appends keep the verdict, one entry on
    entry = fresh.append("submitted", actor="alice", case_id="ce-1", data={})
    after = fresh.verify()
    assert after["entries"] == 302 and after["head"] == {"seq": entry["seq"], "hash": entry["hash"]}
    assert after == AuditLog(tmp_path / "audit").verify()  # the same as a full pass
    # an edit of the same length with the old mtime put back: the ctime still moved
    lines = fresh.path.read_text().splitlines(keepends=True)
    info = fresh.path.stat()
    lines[100] = lines[100].replace("q-99", "q-X9")
    fresh.path.write_text("".join(lines))
    os.utime(fresh.path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert fresh.path.stat().st_size == info.st_size
    report = fresh.verify()
    assert report["status"] == "broken" and report["problems"]


# 5. The library logs to the experiment the platform recorded, not to whatever has the name.


def test_the_library_finds_the_cases_experiment_by_the_id_the_service_recorded(served, monkeypatch):
    from idsp.tracking.client import recorded_experiment

    with served.cases.registry.changing() as cases:
        assert "alice" in cases["ce-1"].get("members", []) or "alice" in cases["ce-1"].get("owners", [])
        cases["ce-1"]["experiment_id"] = "42"
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "tok-alice")
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:1/hub/api")
    monkeypatch.setenv("IDSP_SERVICE_URL", served.url)
    assert [c.get("experiment_id") for c in HubService(served.url, "tok-alice").cases()] == ["42"]
    assert recorded_experiment("ce-1") == "42"
    assert recorded_experiment("ce-2") is None  # not hers: no id, and the run stops at the gate
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN")
    assert recorded_experiment("ce-1") is None  # off the hub: by name, as before
