"""Fixtures for tracking: a real MLflow server started with `idsp tracking serve`, and
case folders whose checklist is answered and approved through legal_ethics with real keys."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
from testkit.ethics import answer_all, approve_all, case_tree
from testkit.files import build_tree
from testkit.mlflow_server import point_client_at, start_server, tracking_server  # noqa: F401


@pytest.fixture
def tracked(tracking_server, monkeypatch):  # noqa: F811  (the imported fixture)
    """Point the client at the module's server, with short retries."""
    return point_client_at(monkeypatch, tracking_server, retries=1, timeout=5)


@pytest.fixture
def keys(tmp_path, idsp_home) -> dict[str, Path]:
    from legal_ethics import reviewers

    out = {}
    for user, roles in {
        "alice": ["jurist"],
        "bob": ["privacy-officer"],
        "carol": ["gemandateerd-verantwoordelijke"],
    }.items():
        pair = reviewers.keygen(tmp_path / "keys" / f"{user}.pem")
        reviewers.register(user, roles, pair.public_key, name=user.title(), actor="admin")
        out[user] = pair.path
    return out


SUITE = (
    '{"name": "inspecties", "expectations": ['
    '{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "kvk_pseudo"}},'
    '{"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "uitkomst", "value_set": [0, 1]}}'
    "]}"
)


@pytest.fixture
def make_case(tmp_path, idsp_home):
    """A case folder (ethics_kit's tree) with a GX suite for the official dataset."""

    def _make(**kw):
        import yaml
        from idsp.case import Case

        tree = case_tree(**kw)
        spec = yaml.safe_load(tree["case.yaml"])
        spec["id"] = "ce-" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:10]
        spec["datasets"][0]["suite"] = "inspecties"
        tree["case.yaml"] = yaml.safe_dump(spec, sort_keys=False)
        tree["gx"] = {"inspecties.json": SUITE}
        root = build_tree(tmp_path / "case", tree)
        subprocess.run(["git", "init", "-q"], cwd=root, check=True)
        subprocess.run(["git", "add", "."], cwd=root, check=True)
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "case"],
            cwd=root,
            check=True,
        )
        return Case.open(root)

    return _make


@pytest.fixture
def case(make_case):
    from legal_ethics import init_checklist

    c = make_case()
    init_checklist(c, actor="pim")
    return c


@pytest.fixture
def approved_case(case, keys):
    from legal_ethics import workflow

    answer_all(case, only_blocking=True)
    workflow.submit(case, actor="pim")
    approve_all(case, keys)
    return case
