"""platform.yaml -> JupyterHub traitlets, tested against an empty traitlets Config()."""

from __future__ import annotations

import subprocess
import sys

import pytest
from idsp.config import load_config
from idsp.hub import configurer
from traitlets.config import Config


def _apply(environ=None, **kw) -> Config:
    c = Config()
    configurer.apply(load_config(environ=environ or {}), c, **kw)
    return c


def test_defaults_are_secure():
    c = _apply()
    assert c.JupyterHub.authenticator_class == "idsp.hub.auth.IdspNativeAuthenticator"
    assert c.NativeAuthenticator.open_signup is False
    assert c.NativeAuthenticator.minimum_password_length == 12
    assert c.NativeAuthenticator.check_common_password is True
    assert c.NativeAuthenticator.allowed_failed_logins == 5
    assert c.NativeAuthenticator.seconds_before_next_try == 600
    assert c.JupyterHub.spawner_class == "idsp.hub.spawner.IdspSpawner"
    assert c.Spawner.mem_limit == "2G"
    assert c.Spawner.disable_user_config is True
    assert c.JupyterHub.cleanup_servers is False
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.JupyterHub.hub_ip == "127.0.0.1"
    assert c.JupyterHub.cookie_secret_file.endswith("jupyterhub_cookie_secret")
    names = [s["name"] for s in c.JupyterHub.services]
    assert names == ["mlflow", "idle-culler", "idsp"]
    culler = c.JupyterHub.services[1]["command"]
    assert "--timeout=3600" in culler and "--cull-every=300" in culler
    assert c.JupyterHub.load_roles[0]["scopes"] == configurer.CULLER_SCOPES
    assert set(c.JupyterHub.load_groups) == {
        "inspectorate-ilt", "inspectorate-nvwa", "inspectorate-nla", "inspectorate-igj", "inspectorate-rdi",
        "projectleiders",  # hub.project_lead_group: there from the first start, without members
    }  # fmt: skip
    assert c.JupyterHub.load_groups["projectleiders"]["users"] == []
    # no usage telemetry from the hub's MLflow or from a user's kernel
    assert c.JupyterHub.services[0]["environment"]["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert c.Spawner.environment["MLFLOW_DISABLE_TELEMETRY"] == "true"


def test_no_secret_is_written_into_the_config():
    c = _apply()
    assert "cookie_secret" not in c.JupyterHub  # only cookie_secret_file
    assert "auth_token" not in c.ConfigurableHTTPProxy  # from the environment
    assert all("api_token" not in s for s in c.JupyterHub.services)


def test_config_values_reach_the_traitlets():
    c = _apply(
        {
            "IDSP_HUB__LIMITS__MEMORY": "4G",
            "IDSP_HUB__LIMITS__CPU": "2",
            "IDSP_HUB__CULL__ENABLED": "false",
            "IDSP_HUB__PASSWORDS__MIN_LENGTH": "16",
            "IDSP_HUB__PORT": "9000",
        }
    )
    assert c.Spawner.mem_limit == "4G"
    assert c.Spawner.cpu_limit == 2.0
    assert c.NativeAuthenticator.minimum_password_length == 16
    assert c.JupyterHub.port == 9000
    assert [s["name"] for s in c.JupyterHub.services] == ["mlflow", "idsp"]
    assert [r["name"] for r in c.JupyterHub.load_roles] == ["user", "idsp-service"]
    service_role = c.JupyterHub.load_roles[1]
    assert (service_role["services"], service_role["scopes"]) == (["idsp"], ["read:users:name"])
    assert c.IdspSpawner.case_registry.endswith("/service/cases.json")


def test_case_index_becomes_case_groups(tmp_path, build_tree):
    build_tree(
        tmp_path,
        {
            "cases": {"ce-1": {"case.yaml": "id: ce-1\nmembers:\n  - {name: A, username: anna}\n"}},
            "index.yaml": f"cases:\n  - id: ce-1\n    path: {tmp_path / 'cases' / 'ce-1'}\n",
        },
    )
    c = _apply({"IDSP_PATHS__CASE_INDEX": str(tmp_path / "index.yaml")})
    assert c.JupyterHub.load_groups["case-ce-1"]["users"] == ["anna"]


@pytest.fixture
def build_tree():
    from testkit.files import build_tree as bt

    return bt


def test_dummy_authenticator_needs_dev():
    from idsp.errors import UserError

    with pytest.raises(UserError, match="--dev"):
        _apply({"IDSP_HUB__AUTHENTICATOR": "dummy"})
    c = _apply({"IDSP_HUB__AUTHENTICATOR": "dummy"}, dev=True)
    assert c.JupyterHub.authenticator_class == "dummy"


def test_hub_up_refuses_dummy_without_dev(cli, monkeypatch):
    monkeypatch.setenv("IDSP_HUB__AUTHENTICATOR", "dummy")
    code, out, err = cli("hub", "up")
    assert code == 2
    assert "hub.authenticator" in err and "--dev" in err
    assert "Traceback" not in err


def test_unsafe_user_prefix_is_refused():
    from idsp.errors import UserError

    with pytest.raises(UserError, match="user_prefix"):
        _apply({"IDSP_HUB__USER_PREFIX": "root;"})


@pytest.mark.parametrize("group", ["hub", "deploy"])
def test_help_imports_nothing_heavy(group):
    code = (
        "import sys\n"
        "from idsp.cli import run\n"
        f"run(['{group}', '--help'])\n"
        "heavy = [m for m in ('pandas', 'great_expectations', 'mlflow', 'dvc', 'sklearn', 'jupyterhub')"
        " if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


def test_secret_files_are_private(tmp_path):
    import stat

    from idsp.errors import UserError
    from idsp.hub.state import ensure_secret, read_secret

    path = tmp_path / "secrets" / "s"
    value, created = ensure_secret(path)
    assert created and len(value) == 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_secret(path) == (value, False)
    path.chmod(0o644)
    with pytest.raises(UserError, match="leaked"):
        read_secret(path)


def test_os_names_cannot_collide_or_inject():
    from idsp.hub import accounts

    assert accounts.os_user_name("idsp-", "jan.jansen") == "idsp-jan.jansen"
    for bad in ("Root", "a b", "a;b", "-x", "a-b", "x" * 40):
        with pytest.raises(ValueError):
            accounts.os_user_name("idsp-", bad)
    assert accounts.os_group_name("idsp-", "case-ce-1") == "idsp-grp-case-ce-1"
    assert len(accounts.os_group_name("idsp-", "case-" + "x" * 60)) <= 32


def test_admins_do_not_hold_the_scope_that_opens_a_users_server():
    """JupyterHub's admin role cannot be edited, so the servers ask for a custom scope that
    only the user's own `user` role holds (docs/hub.md)."""
    from idsp.hub.spawner import OWN_SERVER_SCOPE
    from jupyterhub.roles import get_default_roles

    c = _apply({})
    assert OWN_SERVER_SCOPE in c.JupyterHub.custom_scopes
    user_role = next(r for r in c.JupyterHub.load_roles if r["name"] == "user")
    assert f"{OWN_SERVER_SCOPE}!user" in user_role["scopes"]
    admin_role = next(r for r in get_default_roles() if r["name"] == "admin")
    assert OWN_SERVER_SCOPE not in admin_role["scopes"]
