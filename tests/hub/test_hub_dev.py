"""`--dev` alone admits the test authenticator; without it the real command refuses."""

from __future__ import annotations

import subprocess

import pytest

from tests.hub.conftest import IDSP, RunningHub

pytestmark = pytest.mark.slow


def test_real_command_refuses_dummy_without_dev(hub_env):
    env, _, _ = hub_env
    proc = subprocess.run(
        [IDSP, "hub", "up"],
        env={**env, "IDSP_HUB__AUTHENTICATOR": "dummy"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "hub.authenticator" in proc.stderr and "--dev" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_dev_hub_runs_the_test_authenticator(hub_env):
    env, shared, prefix = hub_env
    hub = RunningHub({**env, "IDSP_HUB__AUTHENTICATOR": "dummy"}, shared, prefix, args=("--dev",))
    hub.start()
    try:
        assert "DEV MODE" in hub.output.read_text()
        anyone = hub.user("zoe", "any-password-at-all")
        assert anyone.login().status_code == 302
        assert anyone.logged_in()
    finally:
        assert hub.stop() == 0
