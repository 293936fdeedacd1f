"""The in-pod hub hook (deploy/kubernetes/hub_hook.py): the profiles a user may choose, the
case volumes mounted for members only, the MLflow account with the password the
single-server hub derives too, and a hub pod that has nothing of idsp but the one mounted
password module."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import pytest
import tornado
from idsp.config import load_config
from idsp.deploy import kubernetes as k8s
from idsp.hub.mlflow_password import user_password
from idsp.hub.spawner import OWN_SERVER_SCOPE
from jupyterhub.roles import get_default_roles
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

ROOT = Path(__file__).resolve().parents[2]
HOOK_FILE = ROOT / "deploy" / "kubernetes" / "hub_hook.py"
ADMIN_PASSWORD = "admin-pw"
USER_KEY = "user-key"
ENVIRON = {"IDSP_MLFLOW_ADMIN_PASSWORD": ADMIN_PASSWORD, "IDSP_MLFLOW_USER_KEY": USER_KEY}


def _load_hook():
    spec = importlib.util.spec_from_file_location("idsp_hub_hook", HOOK_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hook = _load_hook()


def _values(tmp_path) -> dict:
    """Rendered values for two cases (ce-1: anna; ce-2: bob) and inspectorate ILT."""
    lines = ["cases:"]
    for case_id, member in (("ce-1", "anna"), ("ce-2", "bob")):
        folder = tmp_path / "cases" / case_id
        folder.mkdir(parents=True)
        (folder / "case.yaml").write_text(f"id: {case_id}\nmembers:\n  - {{name: X, username: {member}}}\n")
        lines.append(f"  - id: {case_id}\n    path: {folder}")
    (tmp_path / "index.yaml").write_text("\n".join(lines) + "\n")
    cfg = load_config(environ={"IDSP_PATHS__CASE_INDEX": str(tmp_path / "index.yaml")})
    return k8s.render_values(cfg)


def chart_get_config(values: dict):
    """The chart's ``z2jh.get_config``: a dotted key of the values, or the default."""

    def get_config(key: str, default=None):
        node = values
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    return get_config


def spawner_of(name: str, *groups: str):
    """What the hook reads and sets on a KubeSpawner."""
    user = SimpleNamespace(name=name, groups=[SimpleNamespace(name=g) for g in groups])
    return SimpleNamespace(user=user, volumes=[], volume_mounts=[], environment={})


class InMemoryMLflow:
    """MLflow's REST endpoints the hook calls, answering as MLflow 3 does (with tornado's
    HTTPClientError for an error status, like AsyncHTTPClient.fetch)."""

    def __init__(self):
        self.users: dict[str, str] = {}
        self.experiments: dict[str, str] = {}
        self.grants: set[tuple[str, str, str]] = set()

    async def fetch(self, url, method="GET", body=None, headers=None):
        admin = base64.b64encode(f"idsp-mlflow-admin:{ADMIN_PASSWORD}".encode()).decode()
        if headers.get("Authorization") != "Basic " + admin:
            return self._fail(401)
        parsed = urlparse(url)
        data = json.loads(body) if body else {}
        path = parsed.path
        if path.endswith("/users/create"):
            if data["username"] in self.users:
                return self._fail(400)
            self.users[data["username"]] = data["password"]
            return self._ok({})
        if path.endswith("/experiments/create"):
            if data["name"] in self.experiments:
                return self._fail(400)
            self.experiments[data["name"]] = str(len(self.experiments) + 1)
            return self._ok({"experiment_id": self.experiments[data["name"]]})
        if path.endswith("/experiments/get-by-name"):
            name = parse_qs(parsed.query)["experiment_name"][0]
            if name not in self.experiments:
                return self._fail(404)
            return self._ok({"experiment": {"experiment_id": self.experiments[name]}})
        if path.endswith("/permissions/grant"):
            grant = (data["username"], data["resource_id"], data["permission"])
            if grant in self.grants:
                return self._fail(400)
            self.grants.add(grant)
            return self._ok({})
        return self._fail(404)

    @staticmethod
    def _ok(payload):
        return SimpleNamespace(code=200, body=json.dumps(payload).encode())

    @staticmethod
    def _fail(code):
        raise HTTPClientError(code, response=SimpleNamespace(code=code, body=b"{}"))


class DeadMLflow:
    """An MLflow that never answers (tornado reports code 599 without a response)."""

    async def fetch(self, url, **kw):
        raise HTTPClientError(599, "Timeout while connecting")


class MLflowRefusingAccounts(InMemoryMLflow):
    """An MLflow whose account endpoint fails (HTTP 500)."""

    async def fetch(self, url, method="GET", body=None, headers=None):
        if url.endswith("/users/create"):
            return self._fail(500)
        return await super().fetch(url, method, body, headers)


def _configured(values, mlflow) -> Config:
    c = Config()
    hook.configure(c, chart_get_config(values), fetch=mlflow.fetch, environ=ENVIRON)
    return c


def _spawn(c, spawner):
    asyncio.run(c.KubeSpawner.pre_spawn_hook(spawner))


def test_profiles_are_offered_by_group(tmp_path):
    c = _configured(_values(tmp_path), InMemoryMLflow())
    outsider = c.KubeSpawner.profile_list(spawner_of("eve"))
    member = c.KubeSpawner.profile_list(spawner_of("anna", "inspectorate-ilt"))
    assert [p["slug"] for p in outsider] == ["standard"]
    assert [p["slug"] for p in member] == ["standard", "ilt-large"]
    assert all("groups" not in p for p in member), "KubeSpawner rejects unknown profile keys"


def test_a_member_gets_the_case_volume_an_account_and_edit_on_the_case(tmp_path):
    mlflow = InMemoryMLflow()
    c = _configured(_values(tmp_path), mlflow)
    anna = spawner_of("anna", "case-ce-1")
    _spawn(c, anna)
    assert anna.volumes == [{"name": "case-ce-1", "persistentVolumeClaim": {"claimName": "idsp-case-ce-1"}}]
    assert anna.volume_mounts == [{"name": "case-ce-1", "mountPath": "/home/jovyan/cases/ce-1"}]
    # The same password the single-server hub gives (one derivation, idsp.hub.mlflow_password).
    assert mlflow.users == {"anna": user_password(USER_KEY, "anna")}
    assert mlflow.grants == {("anna", mlflow.experiments["ce-1"], "EDIT")}
    assert "ce-2" not in mlflow.experiments
    url = "http://idsp-mlflow.idsp.svc.cluster.local:5000"
    assert anna.environment == {
        "MLFLOW_TRACKING_URI": url,
        "IDSP_TRACKING__URI": url,
        "MLFLOW_TRACKING_USERNAME": "anna",
        "MLFLOW_TRACKING_PASSWORD": user_password(USER_KEY, "anna"),
    }


def test_a_server_lets_in_its_own_user_and_no_admin(tmp_path):
    values = _values(tmp_path)
    c = _configured(values, InMemoryMLflow())
    anna = spawner_of("anna")
    _spawn(c, anna)
    own = f"{OWN_SERVER_SCOPE}!user=anna"
    assert anna.oauth_access_scopes == [own]  # what the server asks a visitor's token for
    assert c.KubeSpawner.oauth_client_allowed_scopes(anna) == [own]  # what its login may grant
    # the user role holds it for itself; JupyterHub's fixed admin role does not
    assert f"{OWN_SERVER_SCOPE}!user" in values["hub"]["loadRoles"]["user"]["scopes"]
    (admin,) = [r for r in get_default_roles() if r["name"] == "admin"]
    assert not any(scope.startswith(OWN_SERVER_SCOPE) for scope in admin["scopes"])
    assert OWN_SERVER_SCOPE in values["hub"]["config"]["JupyterHub"]["custom_scopes"]


def test_a_restart_after_leaving_a_case_drops_its_volume_and_mounts_none_twice(tmp_path):
    mlflow = InMemoryMLflow()
    c = _configured(_values(tmp_path), mlflow)
    home = {"name": "home", "persistentVolumeClaim": {"claimName": "claim-anna"}}
    anna = spawner_of("anna", "case-ce-1", "case-ce-2")
    anna.volumes = [home]
    _spawn(c, anna)
    _spawn(c, anna)  # JupyterHub can reuse the spawner for the next start
    assert [v["name"] for v in anna.volumes] == ["home", "case-ce-1", "case-ce-2"]
    anna.user.groups = [SimpleNamespace(name="case-ce-2")]
    _spawn(c, anna)
    assert [v["name"] for v in anna.volumes] == ["home", "case-ce-2"]
    assert [m["name"] for m in anna.volume_mounts] == ["case-ce-2"]


def test_an_existing_account_and_grant_are_fine(tmp_path):
    mlflow = InMemoryMLflow()
    c = _configured(_values(tmp_path), mlflow)
    _spawn(c, spawner_of("anna", "case-ce-1"))
    again = spawner_of("anna", "case-ce-1")
    _spawn(c, again)  # MLflow answers 400 to the second create and grant
    assert again.environment["MLFLOW_TRACKING_USERNAME"] == "anna"
    assert len(mlflow.grants) == 1


def test_a_dead_mlflow_fails_the_spawn_instead_of_starting_without_an_account(tmp_path):
    c = _configured(_values(tmp_path), DeadMLflow())
    anna = spawner_of("anna", "case-ce-1")
    with pytest.raises(RuntimeError, match="MLflow at http://idsp-mlflow.idsp.svc.cluster.local:5000 did not answer"):
        _spawn(c, anna)
    assert "MLFLOW_TRACKING_PASSWORD" not in anna.environment


def test_a_refused_account_fails_the_spawn(tmp_path):
    c = _configured(_values(tmp_path), MLflowRefusingAccounts())
    with pytest.raises(RuntimeError, match="MLflow user anna: HTTP 500"):
        _spawn(c, spawner_of("anna"))


def test_the_hook_runs_in_a_hub_pod_without_idsp(tmp_path):
    """The rendered values alone make the hook work: hub.extraFiles supplies the password
    module below the hub's config folder, and nothing else of idsp (nor any site-packages
    but tornado, which the chart's hub image has) is importable."""
    values = _values(tmp_path)
    config_dir = tmp_path / "usr-local-etc-jupyterhub"
    for entry in values["hub"]["extraFiles"].values():
        relative = Path(entry["mountPath"]).relative_to("/usr/local/etc/jupyterhub")
        (config_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        (config_dir / relative).write_text(entry["stringData"])
    (config_dir / "values.json").write_text(json.dumps(values))
    (config_dir / "z2jh.py").write_text(
        textwrap.dedent(
            """
            import json, os
            _values = json.load(open(os.path.join(os.path.dirname(__file__), "values.json")))
            def get_config(key, default=None):
                node = _values
                for part in key.split("."):
                    if not isinstance(node, dict) or part not in node:
                        return default
                    node = node[part]
                return node
            """
        )
    )
    site = tmp_path / "site"
    site.mkdir()
    (site / "tornado").symlink_to(Path(tornado.__file__).parent)
    script = textwrap.dedent(
        f"""
        import json, sys, types
        sys.path[:0] = [{str(config_dir)!r}, {str(site)!r}]
        class Section: pass
        class HubConfig:
            def __getattr__(self, name):
                setattr(self, name, Section())
                return getattr(self, name)
        from z2jh import get_config  # as the chart's jupyterhub_config.py does
        c = HubConfig()
        exec(json.load(open({str(config_dir / "values.json")!r}))["hub"]["extraConfig"][{k8s.EXTRA_CONFIG_KEY!r}])
        user = types.SimpleNamespace(name="anna", groups=[types.SimpleNamespace(name="inspectorate-ilt")])
        spawner = types.SimpleNamespace(user=user)
        from idsp.hub.mlflow_password import user_password
        print(json.dumps({{
            "profiles": [p["slug"] for p in c.KubeSpawner.profile_list(spawner)],
            "hook": callable(c.KubeSpawner.pre_spawn_hook),
            "own": c.KubeSpawner.oauth_client_allowed_scopes(spawner),
            "password": user_password("k", "anna"),
            "idsp": sorted(m for m in sys.modules if m.split(".")[0] == "idsp"),
            "from": sys.modules["idsp.hub.mlflow_password"].__file__,
        }}))
        """
    )
    # -I -S: no site-packages, no environment: only the standard library and the paths above.
    done = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["profiles"] == ["standard", "ilt-large"]
    assert seen["hook"] is True
    assert seen["own"] == [f"{OWN_SERVER_SCOPE}!user=anna"]
    assert seen["password"] == user_password("k", "anna")
    assert seen["idsp"] == ["idsp", "idsp.hub", "idsp.hub.mlflow_password"]
    assert seen["from"].startswith(str(config_dir))
