"""Which cases a hub user may see: the service's own case registry, by proved membership.

Rule: on the hub the registry (``<state>/cases.json``, :mod:`idsp.hub.case_registry`, written
only by the service) is the truth about who owns and who is a member of a case; hub groups
and a case's ``case.yaml`` (which its members can edit) decide nothing. Cases of the older,
root-written case index are imported into the registry once, by ``idsp hub up`` (as root:
only root can read their ``case.yaml``), with the members it named then. If the registry
cannot be read, the service says so and lists nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from idsp.errors import ConfigError, UserError
from idsp.hub.case_registry import CaseRegistry, import_legacy, legacy_entries

SHOWN = ("title", "zaaknummer", "case_type")


class IndexUnreadable(UserError):
    """The service account cannot read the case index or its registry."""


class CaseDirectory:
    def __init__(self, index: Path, cases_root: Path, registry: CaseRegistry | None = None):
        self.index = index
        self.cases_root = cases_root
        self.registry = registry or CaseRegistry(Path(index).with_name("cases.json"))

    def _legacy(self) -> list[dict[str, Any]]:
        try:
            return legacy_entries(self.index, self.cases_root)
        except PermissionError:
            raise IndexUnreadable(
                "the platform service cannot read the case index",
                where=str(self.index),
                fix="The platform admin runs `idsp hub up` again: it gives the index to the service's group (mode 0640)",
            ) from None

    def import_index(self) -> list[str]:
        """Bring the cases of the old case index into the registry (once each)."""
        return import_legacy(self.registry, self._legacy())

    def of(self, user: str, groups: Iterable[str] = ()) -> list[dict[str, Any]]:
        try:
            return self.registry.cases_of(user, groups)
        except (PermissionError, ConfigError) as exc:
            raise IndexUnreadable(
                f"the platform service cannot read its case registry ({exc})",
                where=str(self.registry.path),
                fix="The platform admin restores it from backup",
            ) from None

    def is_member(self, user: str, groups: Iterable[str], case_id: str) -> bool:
        return any(c["id"] == case_id for c in self.of(user, groups))
