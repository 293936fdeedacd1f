"""Every rendered Kubernetes manifest is valid for the Kubernetes API (kubernetes-validate,
its schemas shipped offline), on the oldest and the newest version the checks pin: the
chart asks for Kubernetes >= 1.32."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
from idsp.config import load_config
from idsp.deploy import kubernetes as k8s

# Pinned, not kubernetes_validate.latest_version(): a package upgrade must not change what
# "valid" means without a commit. 1.32 is the z2jh chart's kubeVersion floor.
KUBERNETES_VERSIONS = ("1.32.0", "1.37.0")


def _cfg(tmp_path, **env):
    case = tmp_path / "cases" / "ce-1"
    case.mkdir(parents=True)
    (case / "case.yaml").write_text("id: ce-1\nmembers:\n  - {name: A, username: anna}\n")
    (tmp_path / "index.yaml").write_text(f"cases:\n  - id: ce-1\n    path: {case}\n")
    return load_config(environ={"IDSP_PATHS__CASE_INDEX": str(tmp_path / "index.yaml"), **env})


CONFIGS = {
    "default": {},
    "storage class, other namespace, service sizes": {
        "IDSP_KUBERNETES__STORAGE_CLASS": "nfs-client",
        "IDSP_KUBERNETES__NAMESPACE": "idsp-test",
        "IDSP_HUB__BASE_URL": "/idsp/",
        "IDSP_KUBERNETES__SERVICE__CPU_LIMIT": "1500m",
        "IDSP_KUBERNETES__SERVICE__MEMORY_LIMIT": "1.5Gi",
        "IDSP_KUBERNETES__SERVICE__STATE_VOLUME_SIZE": "5Gi",
    },
}
KINDS = {"Deployment", "Service", "NetworkPolicy", "PersistentVolumeClaim", "ConfigMap"}


def _documents(tmp_path, env):
    for name, docs in k8s.render_manifests(_cfg(tmp_path, **env)).items():
        for doc in docs:
            yield f"{name}: {doc['kind']} {doc['metadata']['name']}", doc


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_every_manifest_is_valid_kubernetes(tmp_path, version, config):
    docs = list(_documents(tmp_path, CONFIGS[config]))
    assert {doc["kind"] for _, doc in docs} == KINDS
    for where, doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{where} is not valid Kubernetes {version}: {exc.message}") from exc


def test_the_validation_catches_mistakes(tmp_path):
    rendered = k8s.render_manifests(_cfg(tmp_path))
    deployment = rendered["mlflow.yaml"][0]
    misspelled = copy.deepcopy(deployment)
    misspelled["spec"]["replica"] = misspelled["spec"].pop("replicas")
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "5000"
    service = rendered["platform-service.yaml"][0]
    bad_context = copy.deepcopy(service)
    bad_context["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystm"] = True
    bad_seccomp = copy.deepcopy(service)
    bad_seccomp["spec"]["template"]["spec"]["securityContext"]["seccompProfile"] = "RuntimeDefault"
    for broken in (misspelled, wrong_type, bad_context, bad_seccomp):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)
