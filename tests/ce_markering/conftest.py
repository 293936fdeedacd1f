"""Fixtures for the CE-marking kit: generated data shared per module, a real MLflow server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from testkit.mlflow_server import start_server

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # --import-mode=importlib: cekit beside this file


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    server = start_server(tmp_path_factory.mktemp("mlflow-server"))
    yield server
    server.stop()


@pytest.fixture
def tracked(tracking_server, monkeypatch):
    monkeypatch.setenv("IDSP_TRACKING__URI", tracking_server.url)
    monkeypatch.setenv("IDSP_TRACKING__RETRIES", "2")
    monkeypatch.setenv("IDSP_TRACKING__TIMEOUT_SECONDS", "20")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tracking_server
