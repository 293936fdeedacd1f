"""`idsp doctor` before the first `idsp hub up`: what the hub makes is "later", not a failure;
once the hub has run, the same thing missing or wrong fails again."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def clean_env(monkeypatch, idsp_home):
    for name in ("JUPYTERHUB_API_URL", "IDSP_TRACKING__URI", "IDSP_DVC__REMOTE_URL", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDSP_TRACKING__PORT", "9")  # discard: nothing answers there
    return idsp_home


def _doctor(cli) -> dict:
    code, out, _ = cli("doctor", "--json")
    return {r["id"]: r for r in json.loads(out)["results"]} | {"code": code}


def _hub_has_run(home) -> None:
    # `idsp hub up` writes its generated config on every start (supervisor.prepare)
    (home / "hub").mkdir(exist_ok=True)
    (home / "hub" / "jupyterhub_config.py").write_text("# written by idsp hub up\n")


def test_before_the_first_hub_up_what_it_makes_is_later(cli, clean_env):
    results = _doctor(cli)
    dvc, tracking = results["IDSP-DVC-01"], results["IDSP-TRK-01"]
    assert dvc["status"] == "later" and "will be made by `idsp hub up`" in dvc["detail"]
    assert tracking["status"] == "later" and "will be started by `idsp hub up`" in tracking["detail"]
    # no pseudonymisation key yet is no failure either: keys are made per domain when needed
    keys = results["IDSP-PRIV-01"]
    assert keys["status"] == "later" and "`idsp data keygen DOMAIN`" in keys["detail"]


def test_the_table_shows_later_and_the_exit_code_ignores_it(cli, clean_env):
    code, out, err = cli("doctor")
    assert "later" in out and "will be made by" in " ".join(out.split())
    assert "IDSP-DVC-01" not in err and "IDSP-TRK-01" not in err  # err lists the must-failures


def test_after_the_hub_has_run_a_missing_or_open_remote_fails(cli, clean_env):
    _hub_has_run(clean_env)
    results = _doctor(cli)
    assert results["code"] == 1
    assert results["IDSP-DVC-01"]["status"] == "fail"
    assert "does not exist; `idsp hub up` makes it again" in results["IDSP-DVC-01"]["detail"]
    assert results["IDSP-TRK-01"]["status"] == "fail"
    assert "the hub starts it" in results["IDSP-TRK-01"]["detail"]

    remote = clean_env / "dvc-remote"
    remote.mkdir(mode=0o755)
    remote.chmod(0o755)
    detail = _doctor(cli)["IDSP-DVC-01"]
    assert detail["status"] == "fail" and "mode 0755" in detail["detail"] and "chmod 0711" in detail["detail"]
    remote.chmod(0o711)
    assert _doctor(cli)["IDSP-DVC-01"]["status"] == "pass"


def test_inside_a_hub_server_nothing_is_later(cli, clean_env, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_URL", "http://127.0.0.1:9/hub/api")
    assert _doctor(cli)["IDSP-DVC-01"]["status"] == "fail"
