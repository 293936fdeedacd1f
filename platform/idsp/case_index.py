"""The platform's case index: which cases exist and where.

Rule: the index is one YAML file (``paths.case_index`` in platform.yaml), changed only
here, under a file lock and by atomic replacement, so concurrent ``idsp case new`` runs
neither lose entries nor leave a half-written file. It is a list for finding cases; each
case's own files stay the truth about it.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from idsp.errors import UserError
from idsp.files import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    from idsp.config import PlatformConfig


def index_path(cfg: PlatformConfig | None = None) -> Path:
    return config_or_default(cfg).path("case_index")


def read_index(cfg: PlatformConfig | None = None) -> list[dict[str, Any]]:
    path = index_path(cfg)
    if not path.is_file():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UserError(
            f"the case index is not valid YAML ({exc})",
            where=str(path),
            fix="Repair or remove the file; `idsp case status ROOT` scans folders instead",
        ) from None
    cases = data.get("cases") if isinstance(data, dict) else None
    if not isinstance(cases, list):
        raise UserError("the case index has no `cases:` list", where=str(path))
    return [c for c in cases if isinstance(c, dict)]


@contextlib.contextmanager
def _index_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def record_in_index(entry: dict[str, Any], cfg: PlatformConfig | None = None) -> Path:
    """Add or replace (by id and path) one case in the platform's case index."""
    path = index_path(cfg)
    with _index_lock(path):
        cases = [
            c
            for c in read_index(cfg)
            if not (c.get("id") == entry["id"] and c.get("path") == entry["path"])
        ]
        cases.append(entry)
        cases.sort(key=lambda c: (str(c.get("id")), str(c.get("path"))))
        header = "# The platform's case index, written by `idsp case new` and `idsp case update`.\n"
        atomic_write(
            path, header + yaml.safe_dump({"cases": cases}, sort_keys=False, allow_unicode=True)
        )
    return path


def config_or_default(cfg: PlatformConfig | None):
    if cfg is not None:
        return cfg
    from idsp.config import load_config

    return load_config()
