"""The platform's case registry on the hub: which cases exist, who owns them, who is a member.

Rule: one JSON file in the platform service's own 0700 state folder, written only by the
service (atomically, under a lock); root reads it (the spawner, at each start). On the hub
it is the truth about membership: a case's ``case.yaml``, which its members can edit, decides
nothing there. Cases from before the service (the root-written case index) are imported once,
with the members their ``case.yaml`` named at that moment and no owners.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from idsp.case_file import SLUG_RE as CASE_ID_RE
from idsp.errors import ConfigError
from idsp.files import atomic_write

FILE = "cases.json"
SHOWN = ("title", "zaaknummer", "case_type")
MAX_BYTES = 16 * 1024 * 1024


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class CaseRegistry:
    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def in_state(cls, state: Path) -> CaseRegistry:
        return cls(Path(state) / FILE)

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> dict[str, dict[str, Any]]:
        try:
            with open(self.path, "rb") as f:
                raw = f.read(MAX_BYTES + 1)
        except FileNotFoundError:
            return {}
        if len(raw) > MAX_BYTES:
            raise ConfigError("the case registry is over 16 MiB", where=str(self.path))
        try:
            data = json.loads(raw)
            cases = data["cases"]
            assert isinstance(cases, dict)
        except (ValueError, KeyError, TypeError, AssertionError) as exc:
            raise ConfigError(
                f"the case registry cannot be read ({exc.__class__.__name__}: {exc})",
                where=str(self.path),
                fix="Restore it from a backup (the platform service is its only writer)",
            ) from None
        return {str(k): v for k, v in cases.items() if isinstance(v, dict)}

    def get(self, case_id: str) -> dict[str, Any] | None:
        return self.load().get(case_id)

    @contextlib.contextmanager
    def changing(self) -> Iterator[dict[str, dict[str, Any]]]:
        """The cases, to change in place; written back atomically when the block ends."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.path.with_name(FILE + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            cases = self.load()
            yield cases
            text = json.dumps({"cases": dict(sorted(cases.items()))}, indent=1, ensure_ascii=False)
            atomic_write(self.path, text + "\n", mode=0o600)

    def cases_of(self, user: str, groups: Iterable[str] = ()) -> list[dict[str, Any]]:
        """The cases ``user`` owns or is a member of: id, title, zaaknummer, case_type, path,
        role ("owner" or "member"). ``groups`` is accepted for the callers that have them;
        on the hub, hub groups do not make anyone a member."""
        out = []
        for case_id, case in self.load().items():
            role = role_of(case, user)
            if role and not case.get("status"):  # "making": not there until it is made
                # the experiment's id too: the library logs to it, never to a name (issue 11)
                shown = {k: case[k] for k in (*SHOWN, "experiment_id") if case.get(k) is not None}
                out.append({"id": case_id, **shown, "path": case.get("path", ""), "role": role})
        return sorted(out, key=lambda c: c["id"])


def role_of(case: dict[str, Any], user: str) -> str | None:
    if user in (case.get("owners") or []):
        return "owner"
    if user in (case.get("members") or []):
        return "member"
    return None


def people(case: dict[str, Any]) -> list[str]:
    return sorted({*(case.get("owners") or []), *(case.get("members") or [])})


def legacy_entries(index: Path, cases_root: Path) -> list[dict[str, Any]]:
    """The cases of the old, root-written case index, with the members each ``case.yaml``
    names (read as root by ``idsp hub up``: the service cannot enter old case folders)."""
    import yaml

    from idsp.hub.cases import read_index

    cases = read_index(index, cases_root)
    raw = yaml.safe_load(index.read_text(encoding="utf-8")) if cases else []
    if isinstance(raw, dict):
        raw = raw.get("cases", [])
    extra = {str(c["id"]): c for c in raw or [] if isinstance(c, dict) and c.get("id")}
    return [
        {**{k: extra.get(c.id, {}).get(k) for k in (*SHOWN, "inspectorates")}, "id": c.id,
         "path": str(c.path), "members": list(c.members)}
        for c in cases
    ]  # fmt: skip


def import_as_root(
    registry: CaseRegistry, index: Path, cases_root: Path, uid: int, gid: int
) -> list[str]:
    """``idsp hub up``: import the old index into the service's registry, then hand the
    registry (and its lock) back to the service's account."""
    import os

    added = import_legacy(registry, legacy_entries(index, cases_root))
    for path in (registry.path, registry.path.with_name(FILE + ".lock")):
        if path.exists() and not path.is_symlink():
            os.chown(path, uid, gid)
            os.chmod(path, 0o600)
    return added


def import_legacy(registry: CaseRegistry, legacy: list[dict[str, Any]]) -> list[str]:
    """Add the cases of the root-written case index that the registry does not have yet
    (``legacy``: dicts with id, path, members, title ...); returns their ids."""
    if not legacy:
        return []
    added = []
    with registry.changing() as cases:
        for item in legacy:
            case_id = str(item["id"])
            if case_id in cases or not CASE_ID_RE.match(case_id):
                continue
            cases[case_id] = {
                "id": case_id,
                **{k: item[k] for k in (*SHOWN, "inspectorates") if item.get(k) is not None},
                "path": str(item["path"]),
                "owners": [],
                "members": sorted(set(item.get("members") or [])),
                "created_by": "index",
                "created_at": now(),
                "origin": "index",
            }
            added.append(case_id)
    return added
