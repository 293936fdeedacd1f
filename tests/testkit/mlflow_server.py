"""`idsp tracking serve` as a real subprocess on a free port, for tests that need MLflow."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

IDSP = [sys.executable, "-c", "from idsp.cli import main; main()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, proc: subprocess.Popen, url: str, home: Path, log: Path):
        self.proc, self.url, self.home, self.log = proc, url, home, log

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                return self.proc.wait()
        return self.proc.returncode


def start_server(home: Path, *args: str, env: dict | None = None, timeout: float = 180) -> Server:
    """`idsp tracking serve` as a subprocess on a free port; waits for /health."""
    port = free_port()
    log = home / "serve.log"
    home.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, "IDSP_HOME": str(home), **(env or {})}
    full_env.pop("IDSP_CONFIG", None)
    proc = subprocess.Popen(
        [*IDSP, "tracking", "serve", "--port", str(port), *args],
        env=full_env,
        stdout=open(log, "wb"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so a test can kill the whole tree if the server misbehaves
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited {proc.returncode}: {log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return Server(proc, url, home, log)
        except OSError:
            time.sleep(0.3)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError(f"server not up in {timeout}s: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    """One real `idsp tracking serve` per test module (import this fixture in a conftest)."""
    server = start_server(tmp_path_factory.mktemp("mlflow-server"))
    yield server
    server.stop()


def point_client_at(monkeypatch, server: Server, *, retries: int, timeout: int) -> Server:
    """Make idsp.tracking use ``server`` (not MLFLOW_TRACKING_URI), with the given retries."""
    monkeypatch.setenv("IDSP_TRACKING__URI", server.url)
    monkeypatch.setenv("IDSP_TRACKING__RETRIES", str(retries))
    monkeypatch.setenv("IDSP_TRACKING__TIMEOUT_SECONDS", str(timeout))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return server
