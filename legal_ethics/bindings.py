"""What an approval binds: checklist content, code, data versions and parameters.

Rule: ``compute`` only reads files and asks git which files it tracks; it never runs DVC
(DVC's own records, ``<dataset>.dvc`` and ``dvc.lock``, are read as YAML). The keys
present follow the case policy ``approval_binds``:

* ``checklist`` — content sha256 of definition + answers + evidence hashes;
* ``code`` — sha256 over (path, sha256) of git-tracked files under ``src/`` plus
  ``dvc.yaml`` and ``params.yaml`` (working-tree content, so uncommitted edits count);
* ``data`` — the DVC md5 of each dataset named, from its ``.dvc`` file or ``dvc.lock``;
* ``params`` — sha256 of ``params.yaml``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from legal_ethics.canonical import md5_file, sha256_file, sha256_of

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile

CODE_DIRS = ("src",)
CODE_FILES = ("dvc.yaml", "params.yaml")
_SKIP_PARTS = {"__pycache__", ".ipynb_checkpoints"}


def compute(case: CaseFile, datasets: list[str] | tuple[str, ...]) -> dict[str, Any]:
    binds = set(case.spec.policy.approval_binds)
    out: dict[str, Any] = {}
    if "checklist" in binds:
        out["checklist"] = checklist_hash(case)
    if "code" in binds:
        out["code"] = code_hash(Path(case.root))
    if "data" in binds:
        out["data"] = {name: dvc_md5(case, name) for name in sorted(set(datasets))}
    if "params" in binds:
        params = Path(case.root) / "params.yaml"
        out["params"] = sha256_file(params) if params.is_file() else None
    return out


def checklist_hash(case: CaseFile) -> str | None:
    from idsp.errors import IdspError

    from legal_ethics import checklist

    if not checklist.has_checklist(case):
        return None
    try:
        return checklist.content_sha256(checklist.load_definition(case), checklist.load_answers(case))
    except IdspError:
        # Unreadable checklist: no hash to tag. The gate reads it again for official runs
        # and then reports the error itself.
        return None


def _tracked(root: Path) -> list[str] | None:
    try:
        proc = subprocess.run(
            ["git", "-c", "core.quotepath=off", "ls-files", "-z", "--", *CODE_DIRS, *CODE_FILES],
            cwd=root, capture_output=True, timeout=30, check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return sorted(p for p in proc.stdout.decode("utf-8").split("\0") if p)


def _walk(root: Path) -> list[str]:
    found = [f for f in CODE_FILES if (root / f).is_file()]
    for folder in CODE_DIRS:
        for dirpath, dirnames, filenames in os.walk(root / folder):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_PARTS)
            for name in filenames:
                if not name.endswith(".pyc"):
                    found.append(str((Path(dirpath) / name).relative_to(root)))
    return sorted(found)


def code_files(root: Path) -> list[str]:
    """Git-tracked code files; outside a git repository every file under src/ counts."""
    tracked = _tracked(root)
    return tracked if tracked is not None else _walk(root)


def code_hash(root: Path) -> str:
    listing = []
    for rel in code_files(root):
        path = root / rel
        listing.append([rel, sha256_file(path) if path.is_file() else "<missing>"])
    return sha256_of(listing)


def _read(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None


def dvc_md5(case: CaseFile, name: str) -> str | None:
    """The md5 DVC recorded for a dataset, or None when DVC has no record of it."""
    ds = case.dataset(name)
    root = Path(case.root)
    record = _read(root / f"{ds.path}.dvc")
    if isinstance(record, dict):
        for out in record.get("outs") or []:
            if isinstance(out, dict) and out.get("md5"):
                return str(out["md5"])
    lock = _read(root / "dvc.lock")
    if isinstance(lock, dict):
        for stage in (lock.get("stages") or {}).values():
            for out in (stage or {}).get("outs") or []:
                if isinstance(out, dict) and os.path.normpath(str(out.get("path"))) == os.path.normpath(ds.path):
                    return str(out.get("md5")) if out.get("md5") else None
    return None


def workspace_mismatch(case: CaseFile, name: str, recorded: str | None) -> str | None:
    """The file's own md5 when it differs from DVC's record (edited without ``dvc add``)."""
    if recorded is None or recorded.endswith(".dir"):
        return None
    path = Path(case.root) / case.dataset(name).path
    if not path.is_file():
        return None
    actual = md5_file(path)
    return actual if actual != recorded else None
