"""The platform service on Kubernetes: the hub entries, roles and scopes are the single-server
hub's, its pod is locked down, no secret value is rendered, platform.yaml settings reach it,
and the rendered command and environment start the real service outside any hub."""

from __future__ import annotations

import http.client
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from idsp.config import load_config
from idsp.deploy import kubernetes as k8s
from idsp.deploy import service as pod
from idsp.errors import ConfigError
from idsp.hub import configurer
from idsp.hub.state import HubPaths
from idsp.service import ACCESS_SCOPE, hubconfig, link
from jupyterhub.utils import url_path_join
from traitlets.config import Config


def _cfg(tmp_path, **env):
    lines = ["cases:"]
    for case_id in ("ce-1", "ce-2026-002"):
        folder = tmp_path / "cases" / case_id
        folder.mkdir(parents=True)
        (folder / "case.yaml").write_text(f"id: {case_id}\nmembers:\n  - {{name: A, username: anna}}\n")
        lines.append(f"  - id: {case_id}\n    path: {folder}")
    (tmp_path / "index.yaml").write_text("\n".join(lines) + "\n")
    return load_config(environ={"IDSP_PATHS__CASE_INDEX": str(tmp_path / "index.yaml"), **env})


def _single_server(cfg) -> Config:
    c = Config()
    configurer.apply(cfg, c)
    return c


def _deployment(cfg) -> dict:
    return k8s.render_manifests(cfg)["platform-service.yaml"][0]


def test_roles_and_server_token_scopes_are_the_single_server_hubs(tmp_path):
    cfg = _cfg(tmp_path)
    values = k8s.render_values(cfg)
    c = _single_server(cfg)
    rendered_roles = [{"name": name, **role} for name, role in values["hub"]["loadRoles"].items()]
    assert [r["name"] for r in rendered_roles] == [r["name"] for r in hubconfig.roles()]  # one function
    single_roles = [r for r in c.JupyterHub.load_roles if r["name"] != "idle-culler"]  # z2jh has its own culler
    assert rendered_roles == single_roles
    assert values["hub"]["config"]["JupyterHub"]["custom_scopes"] == c.JupyterHub.custom_scopes
    assert {"self", ACCESS_SCOPE} <= set(values["hub"]["loadRoles"]["user"]["scopes"])
    scopes = values["hub"]["config"]["KubeSpawner"]["server_token_scopes"]
    assert scopes == c.Spawner.server_token_scopes
    assert ACCESS_SCOPE in scopes  # a user server's own token reaches the service


def test_the_hub_entries_match_the_single_server_ones(tmp_path):
    cfg = _cfg(tmp_path)
    services = k8s.render_values(cfg)["hub"]["services"]
    (single,) = [s for s in _single_server(cfg).JupyterHub.services if s["name"] == "idsp"]
    entry = services["idsp"]
    assert entry["url"] == "http://idsp-service.idsp.svc.cluster.local:8002"
    assert entry["oauth_no_confirm"] is True and single["oauth_no_confirm"] is True
    assert entry["display"] == single["display"]
    # the chart makes the token; no token, no name (the key is the name)
    assert set(entry) == {"url", "display", "oauth_no_confirm"}
    # /services/mlflow/ is routed to the platform service, as on one server
    assert services["mlflow"] == {"url": entry["url"]}


def test_the_pod_runs_the_single_server_command_line(tmp_path, idsp_home):
    cfg = _cfg(tmp_path)
    paths = HubPaths.of(cfg)
    paths.secrets_dir.mkdir(parents=True)
    paths.mlflow_user_key.write_text("k" * 64)  # with a key the single-server hub forwards MLflow too
    paths.mlflow_user_key.chmod(0o600)
    (single,) = [s for s in _single_server(cfg).JupyterHub.services if s["name"] == "idsp"]
    container = _deployment(cfg)["spec"]["template"]["spec"]["containers"][0]
    command = container["command"]
    assert command[:4] == ["/opt/idsp/bin/python", "-P", "-m", "idsp.service"]
    # the same flags as on one server; there it adds what only a single machine has (its key
    # file, the root case agent's socket): the pod gets its key from a Secret instead
    flags = [a for a in command if a.startswith("--")]
    assert flags == [a for a in single["command"] if a.startswith("--")][: len(flags)]
    assert {"--state", "--case-index", "--cases-root", "--mlflow-url", "--mlflow-at"} <= set(flags)
    assert command[command.index("--mlflow-url") + 1] == "http://idsp-mlflow.idsp.svc.cluster.local:5000"
    assert command[command.index("--mlflow-at") + 1] == "/services/mlflow/"
    assert container["image"] == "registry.example.org/idsp/idsp-singleuser:" + k8s.VERSION


def test_the_pod_is_locked_down(tmp_path):
    spec = _deployment(_cfg(tmp_path))["spec"]
    pod_spec = spec["template"]["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}  # one audit-log writer
    assert pod_spec["automountServiceAccountToken"] is False
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod_spec["initContainers"] + pod_spec["containers"]:
        ctx = container["securityContext"]
        assert ctx["runAsNonRoot"] is True
        assert ctx["runAsUser"] == pod.UID and pod.UID not in (0, 1000)  # not root, not jovyan
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
        assert "privileged" not in ctx
        assert set(container["resources"]) == {"requests", "limits"}
    assert not any("hostPath" in v for v in pod_spec["volumes"])


def test_platform_settings_reach_the_pod_and_its_volumes(tmp_path):
    cfg = _cfg(
        tmp_path,
        IDSP_KUBERNETES__SERVICE__MEMORY_LIMIT="1Gi",
        IDSP_KUBERNETES__SERVICE__CPU_REQUEST="250m",
        IDSP_KUBERNETES__SERVICE__STATE_VOLUME_SIZE="5Gi",
        IDSP_KUBERNETES__STORAGE_CLASS="nfs-client",
        IDSP_KUBERNETES__NAMESPACE="inspecties",
    )
    deployment, service, state, index = k8s.render_manifests(cfg)["platform-service.yaml"]
    resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert resources == {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
    assert state["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert state["spec"]["storageClassName"] == "nfs-client"
    assert state["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert service["spec"]["type"] == "ClusterIP"
    assert {d["metadata"]["namespace"] for d in (deployment, service, state, index)} == {"inspecties"}
    values = k8s.render_values(cfg)
    assert values["hub"]["services"]["idsp"]["url"] == "http://idsp-service.inspecties.svc.cluster.local:8002"


def test_a_platform_yaml_file_reaches_the_rendered_files(tmp_path, cli):
    config = tmp_path / "platform.yaml"
    config.write_text(
        "kubernetes:\n  namespace: nvwa\n  storage_class: ceph-rwx\n"
        "  service:\n    memory_limit: 2Gi\n    state_volume_size: 20Gi\n"
    )
    out = tmp_path / "out"
    code, _, err = cli("deploy", "render", "kubernetes", "--config", str(config), "--out", str(out))
    assert code == 0, err
    deployment, _, state, _ = yaml.safe_load_all((out / "manifests" / "platform-service.yaml").read_text())
    assert deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "2Gi"
    assert state["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "20Gi"}},
        "storageClassName": "ceph-rwx",
    }
    values = yaml.safe_load((out / "values.yaml").read_text())
    assert values["hub"]["services"]["idsp"]["url"] == "http://idsp-service.nvwa.svc.cluster.local:8002"
    # a wrong size stops the render with the field named, and writes nothing
    config.write_text("kubernetes:\n  service:\n    state_volume_size: 20 GB\n")
    code, _, err = cli("deploy", "render", "kubernetes", "--config", str(config), "--out", str(tmp_path / "bad"))
    assert code == 2
    assert "kubernetes.service.state_volume_size" in err
    assert not (tmp_path / "bad").exists()


def test_a_bad_size_is_refused_naming_the_field(tmp_path):
    with pytest.raises(ConfigError) as err:
        _cfg(tmp_path, IDSP_KUBERNETES__SERVICE__MEMORY_LIMIT="lots")
    assert "kubernetes.service.memory_limit" in str(err.value)
    assert "Kubernetes quantity" in str(err.value)


def test_the_service_mounts_every_case_volume_and_lists_them(tmp_path):
    rendered = k8s.render_manifests(_cfg(tmp_path))
    pod_spec = rendered["platform-service.yaml"][0]["spec"]["template"]["spec"]
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod_spec["volumes"] if "persistentVolumeClaim" in v}
    case_claims = {c["metadata"]["name"] for c in rendered["case-volumes.yaml"]}
    assert claims == case_claims | {"idsp-service-state"}
    assert all(c["spec"]["accessModes"] == ["ReadWriteMany"] for c in rendered["case-volumes.yaml"])
    mounts = {m["mountPath"] for m in pod_spec["containers"][0]["volumeMounts"]}
    assert {"/srv/idsp/cases/ce-1", "/srv/idsp/cases/ce-2026-002"} <= mounts
    index = yaml.safe_load(rendered["platform-service.yaml"][3]["data"]["index.yaml"])
    assert index == {
        "cases": [
            {"id": "ce-1", "path": "/srv/idsp/cases/ce-1", "members": []},
            {"id": "ce-2026-002", "path": "/srv/idsp/cases/ce-2026-002", "members": []},
        ]
    }


def test_only_the_hub_and_the_proxy_reach_the_service(tmp_path):
    cfg = _cfg(tmp_path)
    rendered = k8s.render_manifests(cfg)
    (policy,) = rendered["networkpolicy-platform-service.yaml"]
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    (rule,) = policy["spec"]["ingress"]
    sources = [peer["podSelector"]["matchLabels"]["component"] for peer in rule["from"]]
    assert sources == ["hub", "proxy"] and rule["ports"] == [{"port": 8002, "protocol": "TCP"}]
    # the hub's own policy admits the service (it asks the hub who a token belongs to)
    labels = rendered["platform-service.yaml"][0]["spec"]["template"]["metadata"]["labels"]
    assert labels["hub.jupyter.org/network-access-hub"] == "true"
    # MLflow admits the service: it forwards /services/mlflow/
    (mlflow_rule,) = rendered["networkpolicy-mlflow.yaml"][0]["spec"]["ingress"]
    assert {"podSelector": {"matchLabels": pod.SELECTOR}} in mlflow_rule["from"]
    # user servers reach it through the proxy, where the hub's login decides
    values = k8s.render_values(cfg)
    assert {"to": [{"podSelector": {"matchLabels": pod.PROXY_PODS}}], "ports": [{"port": 8000, "protocol": "TCP"}]} in (
        values["singleuser"]["networkPolicy"]["egress"]
    )
    assert values["singleuser"]["extraEnv"]["IDSP_SERVICE_URL"] == (
        "http://proxy-public.idsp.svc.cluster.local/services/idsp/"
    )


@pytest.mark.parametrize("base_url", ["/", "/idsp/"])
def test_the_library_in_a_user_server_accepts_the_rendered_service_address(tmp_path, base_url):
    # What a user server's environment holds: JupyterHub's Spawner.get_env makes the API URL
    # from hub_connect_url; the library sends the server's token only to the service's
    # path on loopback or on the hub API's host.
    values = k8s.render_values(_cfg(tmp_path, IDSP_HUB__BASE_URL=base_url))
    kube = values["hub"]["config"]["KubeSpawner"]
    env = {
        "JUPYTERHUB_API_TOKEN": "t",
        "JUPYTERHUB_API_URL": url_path_join(kube["hub_connect_url"], f"{base_url}hub/api/"),
        "IDSP_SERVICE_URL": values["singleuser"]["extraEnv"]["IDSP_SERVICE_URL"],
    }
    assert link.service_url(env) == f"http://proxy-public.idsp.svc.cluster.local{base_url}services/idsp/"
    # and what the proxy routes there is the service
    assert values["hub"]["baseUrl"] == base_url
    assert values["hub"]["services"]["idsp"]["url"] == pod.url(load_config(environ={}))


def test_no_secret_value_is_rendered(tmp_path, idsp_home, cli, monkeypatch):
    # The single-server secrets exist on this machine and the secret variables are set:
    # none of their values may reach a rendered file.
    cfg = load_config(environ={})
    paths = HubPaths.of(cfg)
    paths.secrets_dir.mkdir(parents=True)
    values = {
        paths.mlflow_user_key: "user-key-0f3c9a1e7d",
        paths.mlflow_admin_password: "admin-pw-77b2e4c1aa",
        paths.cookie_secret: "cookie-5d1e0b9c3f",
    }
    for path, value in values.items():
        path.write_text(value)
    for name, value in {
        "MLFLOW_PROXY_USER_KEY": "env-user-key-91ac",
        "JUPYTERHUB_API_TOKEN": "env-token-4e7b",
        "IDSP_MLFLOW_USER_KEY": "env-hook-key-c3d2",
    }.items():
        monkeypatch.setenv(name, value)
        values[Path(name)] = value
    out = tmp_path / "out"
    code, _, err = cli("deploy", "render", "kubernetes", "--out", str(out))
    assert code == 0, err
    for file in out.rglob("*"):
        if file.is_file():
            text = file.read_text()
            for value in values.values():
                assert value not in text, f"{file.relative_to(out)} holds a secret value"
    env = {e["name"]: e for e in _deployment(cfg)["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hub", "key": "hub.services.idsp.apiToken"}
    assert env["MLFLOW_PROXY_USER_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "idsp-mlflow", "key": "user-key"}
    secrets_md = (out / "SECRETS.md").read_text()
    assert "kubectl -n idsp create secret generic idsp-mlflow --from-file=basic_auth.ini=" in secrets_md
    assert "`hub.services.idsp.apiToken`" in secrets_md.split("## Made by the chart")[1]


# --- the rendered pod, run as a process -------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int, proc: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the service ended: {proc.stderr.read() if proc.stderr else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the service did not listen")


@pytest.mark.skipif(os.geteuid() != 0, reason="runs the pod's command as another account (needs root)")
def test_the_rendered_pod_starts_the_service_outside_any_hub(tmp_path):
    """The Deployment's init command, command line and environment, with its volumes as
    folders and its secrets as test values, run as an unprivileged account: the service starts
    (it refuses to, as root, with a state folder not its own 0700 one, or without the hub's
    variables) and sends a browser to the hub's login as the client the hub registers for
    the entry (service-idsp, redirect to /services/idsp/oauth_callback)."""
    cfg = _cfg(tmp_path / "platform")
    rendered = k8s.render_manifests(cfg)["platform-service.yaml"]
    pod_spec = rendered[0]["spec"]["template"]["spec"]
    nobody = pwd.getpwnam("nobody")
    # not below pytest's own 0700 folder: the account must reach its folders
    root = Path(tempfile.mkdtemp(prefix="idsp-pod-"))
    root.chmod(0o755)
    mounts = {pod.STATE_MOUNT: root / "state", pod.INDEX_DIR: root / "index", pod.CASES_ROOT: root / "cases"}
    for folder in mounts.values():
        folder.mkdir(parents=True)
    os.chown(root / "state", nobody.pw_uid, nobody.pw_gid)  # what fsGroup does for the pod

    def local(text: str) -> str:
        for inside, outside in mounts.items():
            text = text.replace(inside, str(outside))
        return text

    (root / "index" / "index.yaml").write_text(local(rendered[3]["data"]["index.yaml"]))
    init = [local(a) for a in pod_spec["initContainers"][0]["command"]]
    subprocess.run(init, check=True, user=nobody.pw_uid, group=nobody.pw_gid, timeout=30)
    container = pod_spec["containers"][0]
    command = [sys.executable if a == pod.PYTHON else local(a) for a in container["command"]]
    port = _free_port()
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    env.update(
        JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}",  # the pod's 0.0.0.0:8002, here
        JUPYTERHUB_API_URL="http://127.0.0.1:9/hub/api",  # asked only once a request has a token
        JUPYTERHUB_API_TOKEN="t" * 32,
        MLFLOW_PROXY_USER_KEY="k" * 64,
        HOME=str(root / "state"),
    )
    proc = subprocess.Popen(
        command, env=env, cwd=str(root), user=nobody.pw_uid, group=nobody.pw_gid,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for(port, proc)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/services/idsp/")
        answer = conn.getresponse()
        location = answer.getheader("Location", "")
        answer.read()
        assert answer.status == 302, answer.status
        assert "/hub/api/oauth2/authorize" in location
        assert "client_id=service-idsp" in location
        assert "redirect_uri=%2Fservices%2Fidsp%2Foauth_callback" in location
        conn.request("GET", "/services/idsp/api/whoami")
        assert conn.getresponse().status in (401, 403)
        state = root / "state" / "service"
        assert state.stat().st_uid == nobody.pw_uid and state.stat().st_mode & 0o777 == 0o700
        assert (state / "audit").is_dir()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
