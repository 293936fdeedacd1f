"""Fixtures for the CE-marking kit: generated data shared per module, a real MLflow server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from testkit.mlflow_server import point_client_at, start_server, tracking_server  # noqa: F401

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # --import-mode=importlib: cekit beside this file


@pytest.fixture
def tracked(tracking_server, monkeypatch):  # noqa: F811  (the imported fixture)
    return point_client_at(monkeypatch, tracking_server, retries=2, timeout=20)
