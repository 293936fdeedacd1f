"""`idsp tracking serve` refuses to serve the hub's own MLflow store without login: on the
admin's platform home, a plain `idsp tracking serve` would hand every case's runs to every
local user."""

from __future__ import annotations

import os
import subprocess

from idsp.config import load_config
from idsp.tracking.server import HubStore, prepare
from testkit.mlflow_server import IDSP, free_port


def _serve(home, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "IDSP_HOME": str(home)}
    env.pop("IDSP_CONFIG", None)
    return subprocess.run([*IDSP, "tracking", "serve", "--port", str(free_port()), *args],
                          env=env, capture_output=True, text=True, timeout=120)


def test_serving_the_hubs_store_without_auth_is_refused(tmp_path):
    (tmp_path / "hub").mkdir()  # `idsp hub up` ran in this home: its MLflow store is tmp_path/mlflow
    done = _serve(tmp_path)
    assert done.returncode == 2, done.stderr
    text = " ".join(done.stderr.split())
    assert "refusing to serve the hub's own MLflow store" in text
    assert "without login: every local user could read every case's runs" in text
    assert f"the hub's store is in {tmp_path / 'mlflow'}" in text
    assert "Add --auth" in text and "Traceback" not in done.stderr
    assert not (tmp_path / "mlflow").exists()  # refused before it made anything

    # naming the hub's database or its artefacts explicitly changes nothing
    db = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert _serve(tmp_path, "--backend-store-uri", db, "--artifacts-destination",
                  str(tmp_path / "own")).returncode == 2
    assert _serve(tmp_path, "--backend-store-uri", f"sqlite:///{tmp_path / 'own.db'}",
                  "--artifacts-destination", str(tmp_path / "mlflow" / "artifacts")).returncode == 2


def test_a_store_of_ones_own_or_auth_is_served(tmp_path, monkeypatch):
    monkeypatch.setenv("IDSP_HOME", str(tmp_path))
    monkeypatch.delenv("IDSP_CONFIG", raising=False)
    cfg = load_config()
    hub = HubStore(tmp_path / "mlflow", cfg.tracking_backend_uri())
    own = prepare(cfg, backend_store_uri=f"sqlite:///{tmp_path / 'own' / 'm.db'}",
                  artifacts_destination=str(tmp_path / "own" / "a"), hub_store=hub)
    assert own.backend_store_uri.endswith("own/m.db")
    env = {"MLFLOW_TRACKING_USERNAME": "idsp-mlflow-admin", "MLFLOW_TRACKING_PASSWORD": "x" * 24}
    with_auth = prepare(cfg, auth=True, environ=env, hub_store=hub)
    assert with_auth.auth and with_auth.backend_store_uri == cfg.tracking_backend_uri()


def test_a_hub_on_postgresql_is_recognised_by_its_uri(tmp_path):
    hub = HubStore(tmp_path / "mlflow", "postgresql://mlflow@db:5432/mlflow")
    assert hub.holds("postgresql+psycopg2://mlflow@db:5432/mlflow", "s3://bucket/x")
    assert not hub.holds("postgresql://mlflow@db:5432/other", "s3://bucket/x")
