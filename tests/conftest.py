"""Shared fixtures: an isolated platform home for every test, and a file-tree builder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def idsp_home(tmp_path_factory, monkeypatch) -> Path:
    """Every test gets its own platform home; no test sees the developer's ~/.idsp."""
    home = tmp_path_factory.mktemp("idsp-home")
    monkeypatch.setenv("IDSP_HOME", str(home))
    monkeypatch.delenv("IDSP_CONFIG", raising=False)
    return home


@pytest.fixture
def cli(capsys):
    """Run the idsp CLI in-process: returns (exit code, stdout, stderr)."""
    from idsp.cli import run

    def _run(*args: str):
        code = run(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return _run
