"""How the hub wires MLflow through the platform service: the `mlflow` service's path routed
to the platform service, which gets the MLflow address and the user key from the hub."""

from __future__ import annotations

from idsp.config import load_config
from idsp.hub.configurer import apply
from idsp.hub.state import HubPaths, write_private
from idsp.service.account import mlflow_key_file
from idsp.service.hubconfig import MLFLOW_KEY_ENV, mlflow_path, service_entry
from traitlets.config import Config


def _cfg(tmp_path, monkeypatch):
    monkeypatch.setenv("IDSP_HOME", str(tmp_path))
    monkeypatch.delenv("IDSP_CONFIG", raising=False)
    return load_config()


def test_the_service_forwards_mlflow_only_with_the_key(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, monkeypatch)
    plain = service_entry(cfg, python="py", case_index="i", cases_root="r", environment={})
    assert "--mlflow-url" not in plain["command"] and MLFLOW_KEY_ENV not in plain["environment"]
    entry = service_entry(cfg, python="py", case_index="i", cases_root="r", environment={}, mlflow_key="k" * 64)
    cmd = entry["command"]
    assert cmd[cmd.index("--mlflow-url") + 1] == cfg.tracking.client_uri()
    assert cmd[cmd.index("--mlflow-at") + 1] == "/services/mlflow/" == mlflow_path(cfg)
    # the key by its file (the service's own, 0400), never in the environment, which stays in
    # /proc/<pid>/environ for the process's life, nor on a command line (`ps` shows those)
    assert cmd[cmd.index("--mlflow-key-file") + 1] == str(mlflow_key_file(cfg))
    assert MLFLOW_KEY_ENV not in entry["environment"] and "k" * 64 not in repr(entry)


def test_the_hub_routes_services_mlflow_to_the_platform_service(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, monkeypatch)
    paths = HubPaths.of(cfg)
    write_private(paths.mlflow_user_key, "ab" * 32 + "\n")
    c = Config()
    apply(cfg, c, python="py")
    # the platform service starts first: the hub waits for the `mlflow` entry's url, its address
    assert [s["name"] for s in c.JupyterHub.services][:2] == ["idsp", "mlflow"]
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert services["mlflow"]["url"] == services["idsp"]["url"]
    assert "ab" * 32 not in repr(services["idsp"]) and "--mlflow-key-file" in services["idsp"]["command"]
    # the servers learn whose socket on the service's port may get their token
    assert c.Spawner.environment["IDSP_SERVICE_ACCOUNT"] == services["idsp"]["user"]
    assert c.IdspSpawner.tracking_record_file == str(paths.state_dir / "mlflow-experiments.json")
