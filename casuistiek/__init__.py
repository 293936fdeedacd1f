"""Case kits: shared, tested analyses per case type, one subpackage each.

Rule: a kit is a library a case project calls from its pipeline (``dvc.yaml``) and
notebooks; it never reads or writes outside the case folder it is given, and importing a
kit is cheap (heavy libraries are imported inside the functions that use them). ``KITS``
below is the one list of kits: ``legal_ethics.profiles`` reads a case type's checklist
items and sign-off roles from it, so a kit that is not listed here adds nothing, and a
case type without a kit is refused rather than silently given a shorter checklist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from casuistiek import ce_markering


@dataclass(frozen=True)
class CaseKit:
    """What a kit adds to the checklist of every case of its case type."""

    checklist_items: Callable[[Any], list[Any]]
    signoff_roles: tuple[str, ...] = ()


KITS: dict[str, CaseKit] = {
    "ce_markering": CaseKit(ce_markering.ethics_items, ce_markering.ETHICS_SIGNOFF_ROLES),
}

__all__ = ["KITS", "CaseKit"]
