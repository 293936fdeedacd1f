"""Fixtures for the case-project tests (helpers are in casekit.py)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

# The helpers sit beside this file; make them importable in every pytest import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from casekit import TEMPLATE, VENV_BIN  # noqa: E402


@pytest.fixture(autouse=True)
def _tools_on_path(monkeypatch):
    monkeypatch.setenv("PATH", VENV_BIN + os.pathsep + os.environ.get("PATH", ""))


@pytest.fixture(scope="session")
def snapshot(tmp_path_factory) -> Path:
    """The newest template as a plain folder (no git): fast to render, version-less."""
    from idsp.case_template import materialise

    repo = tmp_path_factory.mktemp("template") / "repo"
    materialise(repo, TEMPLATE)
    plain = repo.parent / "plain"
    shutil.copytree(repo, plain, ignore=shutil.ignore_patterns(".git"))
    return plain


@pytest.fixture
def template_copy(tmp_path) -> Path:
    """A copy of the shipped case template that a test may extend."""
    copy = tmp_path / "template-case"
    shutil.copytree(TEMPLATE, copy)
    return copy
