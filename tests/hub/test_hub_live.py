"""The hub as people use it: a real `idsp hub up`, real login forms, real user servers."""

from __future__ import annotations

import pwd
import stat
from pathlib import Path

import psutil
import pytest

from tests.hub.conftest import CASE_ID, approved_user

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def alice(hub, admin):
    user = approved_user(hub, admin, "alice")
    hub.wait_tracking()
    hub.spawn_seconds = user.spawn()
    return user


@pytest.fixture(scope="module")
def bob(hub, admin):
    user = approved_user(hub, admin, "bob")
    hub.wait_tracking()
    user.spawn()
    return user


def test_start_prints_url_and_private_admin_password_file(hub):
    out = hub.output.read_text()
    assert f"IDSP hub is up at {hub.url}/" in out
    pw_file = hub.home / "secrets" / "admin-password"
    assert str(pw_file) in out
    for secret in (hub.home / "secrets").iterdir():
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    assert stat.S_IMODE((hub.home / "secrets").stat().st_mode) == 0o700


def test_admin_logs_in_through_the_form_and_xsrf_is_enforced(hub, admin):
    assert admin.logged_in()
    # A form post without the _xsrf value is rejected.
    fresh = hub.user("admin", hub.admin_password())
    fresh.http.get("/hub/login")
    r = fresh.http.post("/hub/login", data={"username": "admin", "password": hub.admin_password()})
    assert r.status_code == 403
    # A cookie-authenticated API call without the XSRF header is rejected too.
    r = admin.http.post("/hub/api/users/admin/tokens", json={})
    assert r.status_code == 403


def test_signup_waits_for_admin_approval(hub, admin):
    dave = hub.user("dave")
    assert dave.signup().status_code == 200
    r = dave.login()
    assert r.status_code == 200 and "has not been authorized" in r.text
    # The approval link (a GET) is refused when it comes from another site.
    r = admin.http.get("/hub/authorize/dave", headers={"Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403
    assert dave.login().status_code == 200
    admin.approve("dave")
    assert dave.login().status_code == 302


def test_weak_and_common_passwords_are_refused(hub):
    short = hub.user("erin", "Short-1")
    r = short.signup()
    assert "Het wachtwoord is te kort" in r.text and "Something went wrong" not in r.text
    assert short.login().status_code == 200  # no account was made
    common = hub.user("frank", "123qweasdzxc")  # 12 characters, but on the common list
    common.signup()
    assert common.login().status_code == 200


def test_lockout_after_repeated_failures(hub, admin):
    gina = approved_user(hub, admin, "gina")
    for _ in range(3):
        assert gina.login("wrong-password-123").status_code == 200
    # Locked out: even the right password is refused for hub.passwords.lockout_seconds.
    assert gina.login().status_code == 200


def test_user_server_runs_as_own_account_with_private_home(hub, alice):
    out = alice.run(
        "import getpass, os, idsp\n"
        "print(getpass.getuser(), os.getuid(), oct(os.stat(os.path.expanduser('~')).st_mode & 0o777))\n"
        "print(idsp.__file__)"
    )
    assert out["status"] == "ok", out
    user, uid, mode = out["stdout"].splitlines()[0].split()
    assert user == hub.prefix + "alice"
    assert int(uid) == pwd.getpwnam(user).pw_uid != 0
    assert mode == "0o700"
    assert out["stdout"].splitlines()[1].endswith("idsp/__init__.py")


def test_memory_limit_is_enforced_by_the_kernel(hub, alice):
    out = alice.run("print(open('/proc/self/cgroup').read())")
    assert f"/idsp/{hub.prefix}alice" in out["stdout"]
    limit = Path(f"/sys/fs/cgroup/memory/idsp/{hub.prefix}alice/memory.limit_in_bytes")
    if limit.exists():
        assert int(limit.read_text()) == 1024**3


def test_kernel_logs_a_run_to_the_case_experiment(hub, alice):
    code = (
        "import os, mlflow\n"
        "assert os.environ['MLFLOW_TRACKING_USERNAME'] == 'alice'\n"
        f"mlflow.set_experiment({CASE_ID!r})\n"
        "with mlflow.start_run() as run:\n"
        "    mlflow.log_metric('auc', 0.81)\n"
        "print(run.info.run_id)"
    )
    out = alice.run(code)
    assert out["status"] == "ok", out
    run_id = out["stdout"].strip().splitlines()[-1]
    import httpx

    admin_pw = (hub.home / "secrets" / "mlflow-admin-password").read_text().strip()
    r = httpx.get(
        f"http://127.0.0.1:{hub.env['IDSP_TRACKING__PORT']}/api/2.0/mlflow/runs/get",
        params={"run_id": run_id},
        auth=("idsp-mlflow-admin", admin_pw),
    )
    assert r.status_code == 200, r.text
    assert r.json()["run"]["data"]["metrics"][0]["value"] == 0.81


def test_users_cannot_read_each_other(hub, alice, bob):
    out = bob.run(
        f"import os\n"
        f"try:\n"
        f"    os.listdir({str(Path(hub.env['IDSP_HUB__HOMES_ROOT']) / (hub.prefix + 'alice'))!r})\n"
        f"    print('READ')\n"
        f"except PermissionError:\n"
        f"    print('DENIED')\n"
        f"try:\n"
        f"    os.listdir({str(Path(hub.env['IDSP_PATHS__CASES_ROOT']) / CASE_ID)!r})\n"
        f"    print('CASE READ')\n"
        f"except PermissionError:\n"
        f"    print('CASE DENIED')\n"
        f"try:\n"
        f"    os.listdir({str(Path(hub.env['IDSP_DVC__REMOTE_URL']) / CASE_ID)!r})\n"
        f"    print('REMOTE READ')\n"
        f"except PermissionError:\n"
        f"    print('REMOTE DENIED')\n"
    )
    assert out["stdout"].split() == ["DENIED", "CASE", "DENIED", "REMOTE", "DENIED"], out
    # Nor the other's MLflow experiment: bob is no member of the case.
    out = bob.run(
        "import mlflow\n"
        f"print(mlflow.get_experiment_by_name({CASE_ID!r}))\n"
    )
    assert out["status"] == "error" and "403" in (out["error"] or ""), out
    # Without credentials the tracking server refuses everyone.
    import httpx

    r = httpx.get(f"http://127.0.0.1:{hub.env['IDSP_TRACKING__PORT']}/api/2.0/mlflow/experiments/search")
    assert r.status_code == 401


def test_case_member_can_use_the_case_folder(hub, alice):
    folder = Path(hub.env["IDSP_PATHS__CASES_ROOT"]) / CASE_ID
    out = alice.run(f"open({str(folder / 'notes.txt')!r}, 'w').write('x'); print('OK')")
    assert out["stdout"].strip() == "OK", out
    assert stat.S_IMODE(folder.stat().st_mode) == 0o2770
    # the case's own DVC remote folder: the case group's, like the case folder
    remote = Path(hub.env["IDSP_DVC__REMOTE_URL"]) / CASE_ID
    out = alice.run(f"open({str(remote / 'probe')!r}, 'w').write('x'); print('OK')")
    assert out["stdout"].strip() == "OK", out
    assert stat.S_IMODE(remote.stat().st_mode) == 0o2770
    assert stat.S_IMODE(remote.parent.stat().st_mode) == 0o711  # the root is not listable


def test_case_member_edits_and_commits_in_the_case_the_admin_made(hub, alice):
    """The case repository was made by root: the member can still change its files and
    commit (files shared with the group, git told the folder is safe, objects group-writable),
    as the hub user, with no git configuration of her own."""
    folder = Path(hub.env["IDSP_PATHS__CASES_ROOT"]) / CASE_ID
    out = alice.run(
        "import subprocess\n"
        f"open({str(folder / 'src' / 'model.py')!r}, 'w').write('THRESHOLD = 0.6\\n')\n"
        f"git = ['git', '-C', {str(folder)!r}]\n"
        "p = subprocess.run(git + ['commit', '-qam', 'drempel'], capture_output=True, text=True)\n"
        "print(p.returncode, p.stderr.strip()[:300])\n"
        "print(subprocess.run(git + ['log', '-1', '--format=%an <%ae>'], capture_output=True, text=True).stdout.strip())\n"
    )
    assert out["stdout"].split("\n")[:2] == ["0 ", f"{alice.name} <{alice.name}@users.idsp.invalid>"], out
    made = (folder / "src" / "model.py").stat()
    assert stat.S_IMODE(made.st_mode) & 0o060 == 0o060  # still editable by the other members


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip


@pytest.mark.browser
def test_browser_logs_in_and_sees_jupyterlab(hub, alice, tmp_path):
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Debian chromium missing at {CHROMIUM}: run scripts/setup.sh")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.goto(f"{hub.url}/hub/login", timeout=60_000)
            page.fill("#username_input", "alice")
            page.fill("#password_input", alice.password)
            page.click("#login_submit")
            page.wait_for_url("**/user/alice/**", timeout=90_000)
            page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
            assert "JupyterLab" in page.title()
            page.screenshot(path=str(tmp_path / "jupyterlab.png"))
        finally:
            browser.close()


def test_user_server_survives_a_hub_restart(hub, alice):
    pid = _server_pid(hub, "alice")
    code = hub.stop()
    assert code == 0
    assert psutil.pid_exists(pid), "the user server died with the hub"
    assert not _service_processes(hub), "services outlived the hub"
    hub.start()
    alice.login()
    alice._server_login()  # asserts the server answers through the restarted hub
    assert _server_pid(hub, "alice") == pid
    out = alice.run("print(6 * 7)")
    assert out["stdout"].strip() == "42"


def _server_pid(hub, name: str) -> int:
    for p in psutil.process_iter(["username", "cmdline"]):
        if p.info["username"] == hub.prefix + name and "idsp.hub.singleuser" in (p.info["cmdline"] or []):
            return p.pid
    raise AssertionError(f"no server process for {name}")


def _service_processes(hub) -> list:
    """MLflow (and its job runner, consumers) and the culler of this test hub."""
    marker = hub.env["IDSP_TRACKING__PORT"]
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        try:
            env = p.environ()
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if (marker in cmd and "mlflow" in cmd) or (
            env.get("IDSP_HOME") == str(hub.home) and ("huey" in cmd or "idle_culler" in cmd or "mlflow" in cmd)
        ):
            found.append(p)
    return found


def test_stopping_the_hub_stops_every_service_it_started(hub):
    assert _service_processes(hub), "expected MLflow and the culler to be running"
    assert hub.stop() == 0
    assert not _service_processes(hub), "services (or MLflow workers) outlived the hub"
    import socket

    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", int(hub.env["IDSP_HUB__PORT"]))) != 0, "proxy still up"
    assert not (hub.home / "hub" / "supervisor.pid").exists()
