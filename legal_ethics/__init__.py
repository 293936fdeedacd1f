"""legal_ethics: official checklists, four-eyes review, signed approvals, the run gate, the audit log.

Rule: a run on real or personal data starts only when the approved checklist still matches
what runs (``legal_ethics.gate``), every approval is an Ed25519 signature by a reviewer in
the platform-owned registry (``legal_ethics.reviewers``), and every step is in the
hash-chained audit log (``legal_ethics.audit``). Public surface: ``status``,
``init_checklist``, and the modules ``gate``, ``bindings``, ``audit``, ``workflow``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile
    from idsp.config import PlatformConfig

__all__ = ["status", "init_checklist"]


def status(case: CaseFile, *, config: PlatformConfig | None = None) -> str:
    """none, draft, in_review, approved, rejected, expired or revoked."""
    from legal_ethics import state

    return state.evaluate(case, config=config).status


def init_checklist(case: CaseFile, *, force: bool = False, actor: str | None = None, config: PlatformConfig | None = None) -> Path:
    """Build ``ethics/checklist.yaml`` from the profile in ``case.yaml``; return its path.

    Refuses to overwrite an existing checklist unless ``force``: a rebuilt definition is
    new content, so earlier approvals stop counting (they stay in review.yaml as history).
    """
    from idsp.errors import UserError

    from legal_ethics import audit, checklist, profiles
    from legal_ethics.reviewers import current_user
    from legal_ethics.storage import locked

    path = checklist.checklist_path(case)
    with locked(checklist.lock_path(case)):
        if path.exists() and not force:
            raise UserError(
                "this case already has a checklist", where=str(path),
                fix="Keep it, or rebuild it from case.yaml with `idsp ethics init --force` (approvals must then be renewed)",
            )
        defn = profiles.build_definition(case)
        checklist.save(case, checklist.CHECKLIST_FILE, defn)
    audit.append(
        "checklist.initialised", actor=actor or current_user(), case_id=case.id, config=config,
        items=len(defn.items), signoff_roles=list(defn.signoff_roles), prescan=defn.prescan,
        definition_sha256=checklist.definition_sha256(defn), force=force,
    )
    return path
