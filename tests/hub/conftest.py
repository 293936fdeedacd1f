"""A real hub for the hub tests: ``idsp hub up`` as a subprocess on free ports.

Everything it makes is removed afterwards: user servers, the hub and its services, the OS
accounts and groups with the test's own prefix, cgroups and folders.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.hub.hubclient import HubUser

ROOT = Path(__file__).resolve().parents[2]
IDSP = str(Path(sys.executable).parent / "idsp")
CASE_ID = "ce-hubtest-001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningHub:
    """One `idsp hub up` process and what it needs to be restarted and cleaned up."""

    def __init__(self, env: dict, workdir: Path, prefix: str, args: tuple[str, ...] = ()):
        self.args = args
        self.env = env
        self.workdir = workdir
        self.prefix = prefix
        self.proc: subprocess.Popen | None = None
        self.output = workdir / "hub-up.out"
        self.url = f"http://127.0.0.1:{env['IDSP_HUB__PORT']}"
        self.start_seconds: float | None = None
        self.answering_at_up: dict[str, int | None] = {}

    @property
    def home(self) -> Path:
        return Path(self.env["IDSP_HOME"])

    def start(self, timeout: float = 180) -> None:
        t0 = time.monotonic()
        offset = self.output.stat().st_size if self.output.exists() else 0
        self.proc = subprocess.Popen(
            [IDSP, "hub", "up", *self.args],
            env=self.env,
            stdout=open(self.output, "ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"idsp hub up exited {self.proc.returncode}:\n{self.log()}")
            new = self.output.read_bytes()[offset:].decode(errors="replace")
            if "IDSP hub is up" in new:
                self.start_seconds = time.monotonic() - t0
                self.answering_at_up = self._answering()
                return
            time.sleep(0.2)
        raise AssertionError(f"hub not up after {timeout} s:\n{self.log()}")

    def _answering(self) -> dict[str, int | None]:
        """HTTP status of MLflow's /health and the platform service, right now (None: no answer)."""
        urls = {
            "mlflow": f"http://127.0.0.1:{self.env['IDSP_TRACKING__PORT']}/health",
            # the service listens on the port after the proxy API's (idsp.service.hubconfig.port)
            "service": f"http://127.0.0.1:{int(self.env['IDSP_HUB__PROXY_API_PORT']) + 1}/services/idsp/",
        }
        found: dict[str, int | None] = {}
        for name, url in urls.items():
            try:
                found[name] = httpx.get(url, timeout=2).status_code
            except httpx.HTTPError:
                found[name] = None
        return found

    def wait_tracking(self, timeout: float = 180) -> None:
        """MLflow starts beside the hub and takes longer; tests that need it wait here."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.env['IDSP_TRACKING__PORT']}/health"
        while time.monotonic() < deadline:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"MLflow not up after {timeout} s:\n{self.log()}")

    def stop(self, timeout: float = 60) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def log(self) -> str:
        hub_log = self.home / "hub" / "logs" / "jupyterhub.log"
        text = self.output.read_text(errors="replace") if self.output.exists() else ""
        if hub_log.exists():
            text += "\n--- jupyterhub.log (tail) ---\n" + "\n".join(
                hub_log.read_text(errors="replace").splitlines()[-60:]
            )
        return text

    def admin_password(self) -> str:
        return (self.home / "secrets" / "admin-password").read_text().strip()

    def user(self, name: str, password: str | None = None) -> HubUser:
        return HubUser(self.url, name, password or f"{name}-Geheim-{secrets.token_hex(4)}")


def _cleanup_accounts(prefix: str) -> None:
    import grp
    import pwd

    import psutil

    uids = {p.pw_uid for p in pwd.getpwall() if p.pw_name.startswith(prefix)}
    procs = [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real in uids]
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)
    for p in pwd.getpwall():
        if p.pw_name.startswith(prefix):
            subprocess.run(["userdel", "--remove", p.pw_name], capture_output=True)
    for g in grp.getgrall():
        if g.gr_name.startswith(prefix):
            subprocess.run(["groupdel", g.gr_name], capture_output=True)
    for root in ("/sys/fs/cgroup/memory/idsp", "/sys/fs/cgroup/cpu/idsp", "/sys/fs/cgroup/idsp"):
        base = Path(root)
        if base.is_dir():
            for d in base.glob(f"{prefix}*"):
                try:
                    d.rmdir()
                except OSError:
                    pass


@pytest.fixture(scope="module")
def hub_env():
    if os.geteuid() != 0:
        pytest.fail("the hub tests need root (they create OS accounts); CI runs as root")
    prefix = "t" + secrets.token_hex(3) + "-"
    # User homes, case folders and the platform service's state (in the hub home) must be
    # reachable by the test accounts: not below the pytest folder, which every pytest start
    # (another test run meanwhile, too) closes to 0700 again.
    shared = Path(f"/tmp/idsp-hubtest-{prefix[:-1]}")
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    home = shared / "hub-home"
    cases_root = shared / "cases"
    case_dir = cases_root / CASE_ID
    case_dir.mkdir(parents=True)
    (case_dir / "case.yaml").write_text(
        yaml.safe_dump({"id": CASE_ID, "members": [{"name": "Alice", "username": "alice"}]})
    )
    (case_dir / "src").mkdir()
    (case_dir / "src" / "model.py").write_text("THRESHOLD = 0.5\n")
    # a git repository made by root, as `idsp case new` run by the platform admin makes it
    git = ["git", "-c", "user.name=admin", "-c", "user.email=admin@example.org"]
    subprocess.run([*git, "init", "-q", str(case_dir)], check=True)
    subprocess.run([*git, "-C", str(case_dir), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(case_dir), "commit", "-qm", "case"], check=True)
    index = shared / "index.yaml"
    index.write_text(yaml.safe_dump({"cases": [{"id": CASE_ID, "path": str(case_dir)}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDSP_")}
    env.update(
        {
            "IDSP_HOME": str(home),
            "IDSP_HUB__PORT": str(free_port()),
            "IDSP_HUB__HUB_PORT": str(free_port()),
            "IDSP_HUB__PROXY_API_PORT": str(free_port()),
            "IDSP_TRACKING__PORT": str(free_port()),
            "IDSP_HUB__USER_PREFIX": prefix,
            "IDSP_HUB__HOMES_ROOT": str(shared / "homes"),
            "IDSP_PATHS__CASES_ROOT": str(cases_root),
            "IDSP_PATHS__CASE_INDEX": str(index),
            "IDSP_DVC__REMOTE_URL": str(shared / "dvc-remote"),
            "IDSP_HUB__PASSWORDS__LOCKOUT_ATTEMPTS": "3",
            "IDSP_HUB__LIMITS__MEMORY": "1G",
        }
    )
    yield env, shared, prefix
    _cleanup_accounts(prefix)
    shutil.rmtree(shared, ignore_errors=True)


@pytest.fixture(scope="module")
def hub(hub_env):
    env, shared, prefix = hub_env
    running = RunningHub(env, shared, prefix)
    running.start()
    try:
        yield running
    finally:
        # User servers survive a hub stop by design: stop them through the API first.
        try:
            admin = running.user("admin", running.admin_password())
            if admin.login().status_code == 302:
                for u in admin.api("GET", "/users").json():
                    if u.get("servers"):
                        admin.api("DELETE", f"/users/{u['name']}/server")
        except (httpx.HTTPError, OSError, AssertionError):
            pass
        running.stop()
        subprocess.run([IDSP, "hub", "down", "--servers"], env=env, capture_output=True)


@pytest.fixture(scope="module")
def admin(hub) -> HubUser:
    user = hub.user("admin", hub.admin_password())
    r = user.login()
    assert r.status_code == 302, hub.log()
    return user


def approved_user(hub, admin, name: str) -> HubUser:
    user = hub.user(name)
    r = user.signup()
    assert r.status_code == 200
    admin.approve(name)
    r = user.login()
    assert r.status_code == 302, f"login of approved {name}: {r.status_code}\n{hub.log()}"
    return user
