"""Shared fixtures: an isolated platform home for every test, and a file-tree builder."""

from __future__ import annotations

from pathlib import Path

import pytest


def build_tree(root: Path, tree: dict) -> Path:
    """Write a folder from a dict: str/bytes values are files, dict values are folders."""
    root.mkdir(parents=True, exist_ok=True)
    for name, value in tree.items():
        path = root / name
        if isinstance(value, dict):
            build_tree(path, value)
        elif isinstance(value, bytes):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(value)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(value, encoding="utf-8")
    return root


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
