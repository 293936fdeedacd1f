"""Which cases a hub user may see: the platform's case index, filtered by proved membership.

Rule: a user sees a case only if the hub put them in its case group (``case-<id>``, which
the hub sets from the case's own ``case.yaml`` as root) or the case index names them; the
list never comes from the caller. The index is read as the service account (mode 0640, the
service's group); if it cannot be read, the service says so and lists nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from idsp.errors import UserError
from idsp.hub.cases import read_index

SHOWN = ("title", "zaaknummer", "case_type")


class IndexUnreadable(UserError):
    """The service account cannot read the case index."""


class CaseDirectory:
    def __init__(self, index: Path, cases_root: Path):
        self.index = index
        self.cases_root = cases_root

    def _raw(self) -> dict[str, dict]:
        data = yaml.safe_load(self.index.read_text(encoding="utf-8")) or []
        if isinstance(data, dict):
            data = data.get("cases", [])
        return {str(c["id"]): c for c in data if isinstance(c, dict) and c.get("id")}

    def of(self, user: str, groups: Iterable[str]) -> list[dict[str, Any]]:
        groups = set(groups)
        try:
            cases = read_index(self.index, self.cases_root)
            raw = self._raw() if cases else {}
        except PermissionError:
            raise IndexUnreadable(
                "the platform service cannot read the case index",
                where=str(self.index),
                fix="The platform admin runs `idsp hub up` again: it gives the index to the service's group (mode 0640)",
            ) from None
        mine = []
        for case in cases:
            if case.group in groups or user in case.members:
                extra = raw.get(case.id, {})
                mine.append(
                    {
                        "id": case.id,
                        "path": str(case.path),
                        **{k: extra[k] for k in SHOWN if extra.get(k) is not None},
                    }
                )
        return sorted(mine, key=lambda c: c["id"])

    def is_member(self, user: str, groups: Iterable[str], case_id: str) -> bool:
        return any(c["id"] == case_id for c in self.of(user, groups))
