"""The CE-marking case kit: risk-based selection for market surveillance, with fairness checks.

Rule: importing the kit is cheap; each step lives in its own module (``spec`` the data
specification, ``generate`` synthetic data, ``suite`` the data contract, ``features``,
``model``, ``evaluate``, ``report``, ``ethics`` the checklist items, ``pipeline`` the
stages ``dvc repro`` runs). ``legal_ethics`` finds this kit's checklist items through
``ethics_items`` (listed in ``casuistiek.KITS``) when it builds the checklist of a
``ce_markering`` case.
"""

from __future__ import annotations

from typing import Any

ETHICS_SIGNOFF_ROLES = ("ethicus",)


def ethics_items(spec: Any) -> list:
    """The checklist items this case type adds (see ``casuistiek.ce_markering.ethics``)."""
    from casuistiek.ce_markering import ethics

    return ethics.items(spec)


__all__ = ["ETHICS_SIGNOFF_ROLES", "ethics_items"]
