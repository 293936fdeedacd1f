"""Small things of the hub's life cycle, without a hub: cgroups that stay behind, waiting for
the services before "hub is up", what `idsp hub down` says it did, the JupyterLab overrides."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from idsp.hub import limits
from idsp.hub.singleuser import LAB_OVERRIDES, install_lab_overrides
from idsp.hub.supervisor import DownReport, wait_services

from tests.hub.conftest import free_port

# -- cgroups --------------------------------------------------------------------------------


def _real_cgroups_writable() -> bool:
    return os.geteuid() == 0 and limits.cgroup_mode() != "none" and os.access(limits.CGROUP_ROOT, os.W_OK)


@pytest.mark.skipif(not _real_cgroups_writable(), reason="needs root and a writable cgroup v1/v2 hierarchy")
def test_a_stopped_servers_cgroup_is_removed_once_its_last_process_left():
    name = f"cgtest{secrets.token_hex(3)}-srv"
    lim = limits.Limits(name, 256 * 1024**2, None)
    how = lim.prepare()
    assert lim.dirs and all(d.is_dir() for d in lim.dirs), how
    # a "server" whose child (a kernel) outlives it by a second, as at a real stop
    proc = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys; subprocess.Popen(['sleep', '1']); sys.exit(0)"],
        preexec_fn=lim.join,
    )
    proc.wait()
    try:
        assert lim.remove(wait=5) == []
        assert not any(d.exists() for d in lim.dirs)
    finally:
        for d in lim.dirs:
            if d.exists():
                d.rmdir()


@pytest.mark.skipif(not _real_cgroups_writable(), reason="needs root and a writable cgroup v1/v2 hierarchy")
def test_hub_down_removes_stale_cgroups_and_keeps_busy_ones():
    prefix = f"cgtest{secrets.token_hex(3)}-"
    stale, busy = limits.Limits(prefix + "gone", None, None), limits.Limits(prefix + "busy", None, None)
    stale.prepare()
    busy.prepare()
    sleeper = subprocess.Popen(["sleep", "30"], preexec_fn=busy.join)
    try:
        removed, left = limits.remove_stale(prefix, wait=0.2)
        assert removed == len(stale.dirs) and not any(d.exists() for d in stale.dirs)
        assert set(left) == set(busy.dirs)
    finally:
        sleeper.kill()
        sleeper.wait()
        assert busy.remove(wait=5) == []


def test_cleanup_removes_the_tree_it_made_below_a_given_root(tmp_path):
    # the same layout as on a machine without writable cgroups: folders only
    root = tmp_path / "cgroup"
    dirs = limits.server_dirs("tq-alice", root)
    for d in dirs:
        (d / "sub").mkdir(parents=True)
    limits.server_dirs("tq-bob", root)[1].mkdir(parents=True)
    (root / "memory" / "idsp" / "other-carol").mkdir()
    removed, busy = limits.remove_stale("tq-", root)
    assert (removed, busy) == (4, [])
    assert not any(d.exists() for d in dirs)
    assert (root / "memory" / "idsp" / "other-carol").is_dir()  # another prefix: not ours


# -- waiting for the services ---------------------------------------------------------------


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"OK")

    def log_message(self, *args):
        pass


@pytest.fixture
def answering():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


def test_wait_services_returns_when_each_answers(answering):
    lines: list[str] = []
    t0 = time.monotonic()
    assert wait_services({"MLflow tracking": answering}, timeout=30, echo=lines.append) == []
    assert time.monotonic() - t0 < 5
    assert lines == ["waiting for MLflow tracking to answer ..."]


def test_wait_services_names_the_one_still_starting(answering):
    dead = f"http://127.0.0.1:{free_port()}/services/idsp/"
    lines: list[str] = []
    left = wait_services({"MLflow tracking": answering, "the platform service": dead}, timeout=1.5,
                         echo=lines.append, every=0.5)
    assert left == ["the platform service"]
    assert lines[0] == "waiting for MLflow tracking and the platform service to answer ..."
    assert any(line.startswith("  still starting after") and line.endswith(": the platform service")
               for line in lines[1:]), lines


# -- idsp hub down --------------------------------------------------------------------------


def test_hub_down_says_what_it_did_when_no_hub_runs(cli, idsp_home, monkeypatch):
    monkeypatch.setenv("IDSP_HUB__USER_PREFIX", f"t{secrets.token_hex(3)}-")  # no accounts have it
    code, out, _ = cli("hub", "down", "--servers")
    assert code == 0
    assert out.strip() == "hub not running; 0 user server(s) stopped (0 process(es) ended)"
    assert "No running hub found" not in out and "no running hub found" not in out


def test_hub_down_with_a_stale_pid_file_says_not_running(cli, idsp_home):
    (idsp_home / "hub").mkdir()
    pid_file = idsp_home / "hub" / "supervisor.pid"
    pid_file.write_text(str(2**22 + 1))  # above the largest pid_max: a hub that is gone
    code, out, _ = cli("hub", "down")
    assert (code, out.strip()) == (0, "hub not running")
    assert not pid_file.exists()


def test_down_report_summaries():
    assert DownReport("stopped", 42, 2, 9).summary() == "hub stopped (pid 42); 2 user server(s) stopped (9 process(es) ended)"
    assert DownReport("not running", cgroups=3).summary() == "hub not running; 3 cgroup(s) of stopped servers removed"
    assert "kill 7" in DownReport("still running", 7).summary()


# -- JupyterLab overrides -------------------------------------------------------------------


def test_lab_overrides_are_merged_into_the_environment_not_a_home(tmp_path):
    path = install_lab_overrides(tmp_path)
    assert path == tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert json.loads(path.read_text()) == LAB_OVERRIDES
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    # an admin's own overrides stay, and a second run changes nothing
    path.write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "JupyterLab Dark"},
                                "@jupyterlab/apputils-extension:notification": {"checkForUpdates": False}}))
    install_lab_overrides(tmp_path)
    merged = json.loads(path.read_text())
    assert merged["@jupyterlab/apputils-extension:themes"] == {"theme": "JupyterLab Dark"}
    assert merged["@jupyterlab/apputils-extension:notification"] == {"checkForUpdates": False, "fetchNews": "false"}
    before = path.stat().st_mtime_ns
    time.sleep(0.01)
    install_lab_overrides(tmp_path)
    assert path.stat().st_mtime_ns == before
