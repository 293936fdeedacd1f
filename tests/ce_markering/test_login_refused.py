"""MLflow refuses the login (401): `idsp case status` says so with the fix, and a pipeline
stage ends with one paragraph and exit 2, not an `MlflowException` traceback. Against a
real `idsp tracking serve --auth` (MLflow's basic-auth app) and a wrong password."""

from __future__ import annotations

import secrets
import subprocess
import sys

import pytest
import yaml
from cekit import new_case, tool_env
from testkit.mlflow_server import start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("mlflow-auth"), "--auth",
                          env={"MLFLOW_TRACKING_USERNAME": "admin",
                               "MLFLOW_TRACKING_PASSWORD": secrets.token_urlsafe(18)})
    yield server
    server.stop()


@pytest.fixture
def wrong_login(auth_server, monkeypatch, idsp_home):
    env = {"IDSP_HOME": str(idsp_home), "IDSP_TRACKING__URI": auth_server.url, "IDSP_TRACKING__RETRIES": "1",
           "MLFLOW_TRACKING_USERNAME": "alice", "MLFLOW_TRACKING_PASSWORD": "not-alices-password"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return env


def test_case_status_names_the_refused_login_and_the_fix(cli, wrong_login, tmp_path):
    root = new_case(tmp_path / "cases", rows=2000)
    code, out, err = cli("case", "status", str(root.parent))
    assert code == 0, err
    flat = " ".join(out.split())
    assert "MLflow refused the login (401)" in flat
    assert "MLFLOW_TRACKING_PASSWORD" in flat and "Stop My Server" in flat
    assert "not reachable" not in flat


def test_a_stage_that_meets_a_401_ends_in_one_paragraph_without_traceback(wrong_login, tmp_path):
    root = new_case(tmp_path / "cases", rows=2000)
    params = yaml.safe_load((root / "params.yaml").read_text())
    assert params["ce_markering"].get("track", True)  # the stage below is a tracked run

    def stage(name: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "casuistiek.ce_markering.pipeline", name, "--case", str(root)],
                              cwd=root, capture_output=True, text=True, timeout=600,
                              env=tool_env(**wrong_login))

    for untracked in ("generate", "validate"):
        proc = stage(untracked)
        assert proc.returncode == 0, proc.stderr[-3000:]
    proc = stage("train")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "MlflowException" not in proc.stderr
    assert "ce_markering train: MLflow at http://127.0.0.1" in proc.stderr
    assert "MLflow refused the login (401)" in proc.stderr and "Start My Server" in proc.stderr
