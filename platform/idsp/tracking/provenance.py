"""What a run records about where it came from: case, commit, versions, data, approvals, quality.

Rule: provenance is computed before the run exists and set in the one ``create_run``
call, so no run is ever half-tagged; every tag name starts with ``idsp.`` (``TAG``), and
a dataset name becomes part of a tag name only through ``tag_key``. Key ids are recorded,
never keys.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from idsp.errors import IdspError
from idsp.keys import KeyStore
from legal_ethics.bindings import dvc_md5
from legal_ethics.gate import GateDecision
from legal_ethics.quality_evidence import QualityEvidence

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile
    from idsp.config import PlatformConfig

TAG = "idsp."
APPROVAL_NONE = "none"
VERSION_PACKAGES = (
    "idsp", "mlflow", "pandas", "numpy", "scikit-learn", "great-expectations", "fairlearn",
    "pyarrow", "dvc",
)  # fmt: skip


def git_state(root: Path) -> tuple[str, bool | None]:
    """(commit, dirty) of the case repository; ("none", None) outside git."""

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return "none", None
        status = git("status", "--porcelain", "--untracked-files=no")
        return head.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return "none", None


def package_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in VERSION_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def tag_key(name: str) -> str:
    """A dataset name as MLflow accepts it inside a tag name."""
    return re.sub(r"[^A-Za-z0-9_.\-/ ]", "_", name)


def key_ids(case: CaseFile, datasets: Sequence[str], config: PlatformConfig) -> dict[str, str]:
    """Pseudonymisation domain -> the id of its key ("missing" when the key store has none)."""
    domains = sorted({d for n in datasets if (d := case.dataset(n).pseudonymisation_domain) is not None})
    if not domains:
        return {}
    store = KeyStore.from_config(config)
    out = {}
    for domain in domains:
        try:
            out[domain] = store.load(domain).key_id
        except IdspError:
            out[domain] = "missing"
    return out


def quality_tags(evidence: Sequence[QualityEvidence]) -> dict[str, str]:
    """The quality state of each dataset as the gate read it: ``idsp.quality.<dataset>[.*]``."""
    tags: dict[str, str] = {}
    for e in evidence:
        key = f"{TAG}quality.{tag_key(e.dataset)}"
        tags[key] = e.state
        if e.result is not None:
            tags[f"{key}.sha256"] = e.result["sha256"]
            tags[f"{key}.data_match"] = str(e.data_match).lower()
    return tags


def run_tags(
    case: CaseFile,
    decision: GateDecision,
    datasets: Sequence[str],
    *,
    purpose: str,
    config: PlatformConfig,
) -> dict[str, str]:
    """Every provenance tag of a run about to be created under ``decision``."""
    spec = case.spec
    commit, dirty = git_state(case.root)
    bindings = decision.bindings or {}
    official = decision.official
    tags = {
        f"{TAG}case_id": spec.id,
        f"{TAG}zaaknummer": spec.zaaknummer,
        f"{TAG}case_type": spec.case_type,
        f"{TAG}inspectorates": ",".join(spec.inspectorates),
        f"{TAG}official": str(bool(official)).lower(),
        f"{TAG}approval": ",".join(decision.approval_ids) if official and decision.approval_ids else APPROVAL_NONE,
        f"{TAG}checklist_hash": decision.checklist_hash or "none",
        f"{TAG}checklist_status": decision.status or "none",
        # what the approval allowed this run: development (build, evaluate) or use
        f"{TAG}purpose": purpose if official else "exploration",
        f"{TAG}git.commit": commit,
        f"{TAG}git.dirty": "unknown" if dirty is None else str(dirty).lower(),
        f"{TAG}datasets": ",".join(datasets),
        f"{TAG}versions": json.dumps(package_versions(), sort_keys=True),
        f"{TAG}bindings": json.dumps(bindings, sort_keys=True, default=str)[:7900],
        f"{TAG}pseudonymisation.key_ids": json.dumps(key_ids(case, datasets, config), sort_keys=True),
        "mlflow.source.git.commit": commit,
    }
    if "code" in bindings:
        tags[f"{TAG}code_hash"] = str(bindings["code"])
    if "params" in bindings:
        tags[f"{TAG}params_hash"] = str(bindings["params"])
    for name in datasets:
        ds = case.dataset(name)
        md5 = (bindings.get("data") or {}).get(name)
        if md5 is None:
            md5 = dvc_md5(case, name)
        tags[f"{TAG}data.{tag_key(name)}.dvc_md5"] = md5 or "none"
        tags[f"{TAG}data.{tag_key(name)}.kind"] = (
            ("personal" if ds.personal_data else "non-personal") + (", synthetic" if ds.synthetic else ", real")
        )
    tags.update(quality_tags(decision.quality))
    return tags
