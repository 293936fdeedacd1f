"""The cases the hub knows about: read from the platform's case index.

Rule: read-only. The index (``paths.case_index``, written by ``idsp case new``) is a YAML
``{cases: [{id, path, ...}]}`` (a bare list is accepted too); members come from the entry's
``members`` or else from the case's own ``case.yaml`` (``owners`` and ``members`` with a
``username``: the hub account). A missing index means no cases yet; a malformed one is an
error that names the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from idsp.errors import ConfigError


@dataclass(frozen=True)
class CaseEntry:
    id: str
    path: Path
    members: tuple[str, ...]

    @property
    def group(self) -> str:
        return f"case-{self.id}"


def read_index(index: Path, cases_root: Path) -> list[CaseEntry]:
    if not index.is_file():
        return []
    try:
        data = yaml.safe_load(index.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as exc:
        raise ConfigError(f"the case index is not valid YAML ({exc})", where=str(index)) from None
    if isinstance(data, dict):  # tolerate {"cases": [...]}
        data = data.get("cases", [])
    if not isinstance(data, list):
        raise ConfigError("the case index must be a list of cases", where=str(index))
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not item.get("id"):
            raise ConfigError(f"entry {i} has no `id`", where=str(index))
        path = Path(item.get("path") or cases_root / str(item["id"]))
        members = item.get("members")
        if members is None:
            members = _members_from_case_yaml(path)
        names = tuple(_username(m) for m in members)
        out.append(CaseEntry(str(item["id"]), path, tuple(n for n in names if n)))
    return out


def _username(person) -> str:
    if isinstance(person, str):
        return person
    if isinstance(person, dict):
        return str(person.get("username") or person.get("user") or "")
    return ""


def _members_from_case_yaml(path: Path) -> list:
    spec = path / "case.yaml"
    try:
        data = yaml.safe_load(spec.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return []
    if not isinstance(data, dict):
        return []
    return list(data.get("owners") or []) + list(data.get("members") or [])
