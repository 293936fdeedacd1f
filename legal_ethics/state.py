"""Where a checklist stands — derived from its files every time, never stored.

Rule: the status (none, draft, in_review, approved, rejected, expired, revoked) is computed
from the definition, the answers, the latest submission *in the audit log's order* and the
decisions that count (``approvals.check``); no file holds a status field an editor could change. This module
only reads. Four-eyes: an approval by someone who answered an item or submitted the
checklist does not count, and each required role needs a different reviewer.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from idsp.errors import UserError

from legal_ethics import approvals, audit, checklist
from legal_ethics.reviewers import (
    Registry,
    load_registry,
    role_label,
    vouched_fingerprints,
    with_service_decisions,
)
from legal_ethics.schema import Answers, ChecklistDefinition, ReviewRecord, Submission

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile
    from idsp.config import PlatformConfig

_NOUN = {"revoked": "revocation", "rejected": "rejection"}
STATUSES = ("none", "draft", "in_review", "approved", "rejected", "expired", "revoked")


class LoadedChecklist(NamedTuple):
    definition: ChecklistDefinition
    answers: Answers
    review: ReviewRecord
    content_sha256: str


@dataclass(frozen=True)
class ChecklistState:
    status: str
    definition: ChecklistDefinition | None = None
    answers: Answers | None = None
    review: ReviewRecord | None = None
    content_sha256: str | None = None
    submission: Submission | None = None
    verdicts: list[approvals.Verdict] = field(default_factory=list)
    approvals: list[approvals.Verdict] = field(default_factory=list)  # the ones that count now
    signed_roles: dict[str, str] = field(default_factory=dict)  # role -> reviewer
    reasons: list[str] = field(default_factory=list)

    def loaded(self) -> LoadedChecklist:
        """The checklist's files; a case without a checklist is refused with the next step."""
        if self.definition is None or self.answers is None or self.review is None or self.content_sha256 is None:
            raise UserError("this case has no checklist", fix="Write it first with `idsp ethics init`")
        return LoadedChecklist(self.definition, self.answers, self.review, self.content_sha256)

    @property
    def approval_ids(self) -> list[str]:
        return [v.decision.id for v in self.approvals]

    @property
    def purpose(self) -> str | None:
        """What the approvals that count allow, from their signed payloads (not from the
        editable review record): "use" only if every one of them was given for use."""
        if self.status != "approved" or not self.approvals:
            return None
        return "use" if all(v.payload.get("purpose", "use") == "use" for v in self.approvals) else "development"

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "checklist_id": self.definition.id if self.definition else None,
            "content_sha256": self.content_sha256,
            "submission": self.submission.model_dump(mode="json") if self.submission else None,
            "signed_roles": self.signed_roles,
            "required_roles": list(self.definition.signoff_roles) if self.definition else [],
            "approval_ids": self.approval_ids,
            "approved_for": self.purpose,
            "reasons": self.reasons,
        }


def _match_roles(roles: list[str], candidates: dict[str, list[approvals.Verdict]]) -> dict[str, approvals.Verdict]:
    """Give each role a distinct reviewer (small bipartite matching, backtracking)."""
    best: dict[str, approvals.Verdict] = {}

    def go(i: int, used: set[str], chosen: dict[str, approvals.Verdict]) -> None:
        nonlocal best
        if len(chosen) > len(best):
            best = dict(chosen)
        if i == len(roles):
            return
        for v in candidates.get(roles[i], []):
            who = v.payload["reviewer"]
            if who not in used:
                chosen[roles[i]] = v
                go(i + 1, used | {who}, chosen)
                del chosen[roles[i]]
        go(i + 1, used, chosen)

    go(0, set(), {})
    return best


def _changed_items(old: dict[str, str], new: dict[str, str]) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [k for k in keys if old.get(k) != new.get(k)]


def _platform_files_outside(case: CaseFile, config: PlatformConfig | None) -> None:
    """Trust lives outside the case: a registry or audit log inside it would be editable by members."""
    from pathlib import Path

    from idsp.errors import ConfigError

    from legal_ethics.reviewers import registry_path

    root = Path(case.root).resolve()
    for what, path in (("reviewer registry", registry_path(config)), ("audit log", audit.log_path(config))):
        if root in Path(path).resolve().parents:
            raise ConfigError(
                f"the {what} is inside the case folder, where every member can edit it", where=str(path),
                fix=f"Point paths.{'reviewers' if what.startswith('reviewer') else 'audit_log'} in platform.yaml "
                "to a platform folder outside the cases",
            )


def log_events(config: PlatformConfig | None = None) -> list[dict[str, Any]]:
    """The review's events in the order they happened: the local audit log. The seam for the
    platform service, which passes its own ordered events to ``evaluate(events=...)``."""
    return list(audit.entries(config=config))


def _current_submission(review: ReviewRecord, case_log: list[dict[str, Any]]) -> Submission | None:
    """The latest submission in the audit log's order, not in review.yaml's: a reordered
    review.yaml cannot make an older submission current again. Without any submission in
    the log (a log kept elsewhere), review.yaml's last one."""
    submitted = [e for e in case_log if e.get("event") == "submitted"]
    if submitted:
        latest = (submitted[-1].get("data") or {}).get("submission_id")
        for sub in review.submissions:
            if sub.id == latest:
                return sub
    return review.submissions[-1] if review.submissions else None


def evaluate(
    case: CaseFile, *, config: PlatformConfig | None = None, now: datetime | None = None,
    events: list[dict[str, Any]] | None = None,
) -> ChecklistState:
    """The state of the case's checklist. ``events``: the audit log's entries in order (all
    cases; default ``log_events(config)``), so the order of submissions and decisions comes
    from the log, never from review.yaml."""
    if not checklist.has_checklist(case):
        return ChecklistState(status="none", reasons=["this case has no checklist: run `idsp ethics init`"])
    now = now or datetime.now(UTC)
    defn = checklist.load_definition(case)
    answers = checklist.load_answers(case)
    review = with_service_decisions(checklist.load_review(case), case.id, config)
    content = checklist.content_sha256(defn, answers)
    base = ChecklistState(status="draft", definition=defn, answers=answers, review=review, content_sha256=content)

    if not review.submissions:
        return replace(base, reasons=["the checklist has not been submitted for review (`idsp ethics submit`)"])

    _platform_files_outside(case, config)
    registry = load_registry(config)
    log = log_events(config) if events is None else list(events)
    case_log = [e for e in log if e.get("case_id") == case.id]
    submission = _current_submission(review, case_log)
    assert submission is not None
    rolled_back = _rolled_back(base, submission, case_log)
    if rolled_back is not None:
        return rolled_back
    vouched = vouched_fingerprints(config, entries=log)
    verdicts = [
        approvals.check(d, registry=registry, vouched=vouched, case_id=case.id, checklist_id=defn.id)
        for d in review.decisions
    ]
    base = replace(base, submission=submission, verdicts=verdicts)
    reasons = [v.problem for v in verdicts if v.problem]
    # Only decisions for the latest submission, signed for a sign-off role, take effect.
    current = [
        v for v in verdicts
        if v.ok and v.payload.get("submission_id") == submission.id and v.payload.get("role") in defn.signoff_roles
    ]
    if submission.content_sha256 != content:
        return _content_changed(base, submission, current, checklist.item_hashes(defn, answers), reasons)
    ended = _revoked_or_rejected(base, current, reasons)
    if ended is not None:
        return ended
    return _signed_off(base, submission, current, reasons, registry, now)


def _rolled_back(base: ChecklistState, submission: Submission, case_log: list[dict[str, Any]]) -> ChecklistState | None:
    """The audit log remembers every submission and decision; review.yaml must still hold
    them. A removed revocation or rejection would otherwise silently re-open the gate."""
    assert base.review is not None
    known_decisions = {d.id for d in base.review.decisions}
    known_submissions = {s.id for s in base.review.submissions}
    submitted = [e for e in case_log if e.get("event") == "submitted"]
    if submitted and submitted[-1]["data"].get("submission_id") not in known_submissions:
        lost = submitted[-1]
        return replace(
            base, status="draft", submission=submission,
            reasons=[f"submission {lost['data'].get('submission_id')} (audit log seq {lost['seq']}, by "
                     f"{lost['actor']}) is missing from review.yaml; the review record was rolled back or "
                     "edited — submit again and have it approved again"],
        )
    removed = [
        e for e in case_log
        if e.get("event") in ("rejected", "revoked") and e["data"].get("decision_id") not in known_decisions
        and e["data"].get("submission_id") == submission.id
    ]
    if removed:
        lost = removed[-1]
        return replace(
            base, status="revoked" if lost["event"] == "revoked" else "rejected", submission=submission,
            reasons=[f"{_NOUN[lost['event']]} {lost['data'].get('decision_id')} by "
                     f"{lost['actor']} (audit log seq {lost['seq']}) was removed from review.yaml; it still applies"],
        )
    return None


def _content_changed(
    base: ChecklistState, submission: Submission, current: list[approvals.Verdict],
    items_now: dict[str, str], reasons: list[str],
) -> ChecklistState:
    """Say which items changed after each approval of the last submission, if any."""
    changed_after: list[str] = []
    for v in current:
        if v.decision.decision == "approve":
            changed = _changed_items(v.payload.get("items", {}), items_now)
            if changed:
                changed_after.append(
                    f"{', '.join(changed)} changed after approval {v.decision.id} by "
                    f"{v.payload['reviewer']} ({role_label(v.payload['role'])}) of {v.payload['at'][:10]}"
                )
    if not changed_after:
        changed_after.append(f"the checklist changed after submission {submission.id} by {submission.by} "
                             "(the latest submission in the audit log)")
    return replace(
        base, status="draft",
        reasons=[*reasons, *changed_after, "submit again (`idsp ethics submit`) and have it re-approved"],
    )


def _revoked_or_rejected(
    base: ChecklistState, current: list[approvals.Verdict], reasons: list[str]
) -> ChecklistState | None:
    if any(v.decision.decision == "revoke" for v in current):
        rv = next(v for v in current if v.decision.decision == "revoke")
        return replace(
            base, status="revoked",
            reasons=[*reasons, f"the approval was revoked by {rv.payload['reviewer']} on {rv.payload['at'][:10]}: "
                     f"{rv.payload.get('comment') or 'no reason given'}"],
        )
    if any(v.decision.decision == "reject" for v in current):
        rj = next(v for v in current if v.decision.decision == "reject")
        return replace(
            base, status="rejected",
            reasons=[*reasons, f"rejected by {rj.payload['reviewer']} ({role_label(rj.payload['role'])}) on "
                     f"{rj.payload['at'][:10]}: {rj.payload.get('comment') or 'no reason given'}"],
        )
    return None


def _signed_off(
    base: ChecklistState, submission: Submission, current: list[approvals.Verdict], reasons: list[str],
    registry: Registry, now: datetime,
) -> ChecklistState:
    """Approved when every sign-off role has a live approval by a different reviewer who
    neither answered nor submitted (four-eyes); expired when only expired ones fill them."""
    assert base.answers is not None and base.definition is not None
    authors = {a.author for a in base.answers.answers.values()}
    candidates: dict[str, list[approvals.Verdict]] = {}
    live: dict[str, list[approvals.Verdict]] = {}
    for v in current:
        if v.decision.decision != "approve":
            continue
        who, role = v.payload["reviewer"], v.payload["role"]
        if who in authors or who == submission.by:
            did = "answered items of" if who in authors else "submitted"
            reasons.append(
                f"approval {v.decision.id} by {who} ({role_label(role)}) does not count: {who} {did} "
                "this checklist, and nobody approves their own work (four-eyes)"
            )
            continue
        if v.payload.get("content_sha256") != base.content_sha256:
            reasons.append(f"approval {v.decision.id} by {who} is for other content than the checklist now")
            continue
        candidates.setdefault(role, []).append(v)
        expires = v.payload.get("expires_at")
        if expires and datetime.fromisoformat(expires) <= now:
            reasons.append(
                f"approval {v.decision.id} by {who} ({role_label(role)}) expired on {expires[:10]}; "
                "the checklist must be reviewed and approved again"
            )
            continue
        live.setdefault(role, []).append(v)

    roles = list(base.definition.signoff_roles)
    matched = _match_roles(roles, live)
    signed = {r: v.payload["reviewer"] for r, v in matched.items()}
    if len(matched) == len(roles):
        return replace(
            base, status="approved", approvals=[matched[r] for r in roles], signed_roles=signed, reasons=reasons,
        )
    with_expired = _match_roles(roles, candidates)
    excluded = authors | {submission.by}
    for role in roles:
        if role not in matched:
            eligible = [u for u in registry.with_role(role) if u not in excluded]
            who = ", ".join(eligible) if eligible else "nobody eligible in the registry holds it"
            reasons.append(
                f"role {role_label(role)} has not signed (reviewers with this role: {who}); "
                "a different person must sign each role"
            )
    return replace(
        base, status="expired" if len(with_expired) == len(roles) else "in_review",
        approvals=list(matched.values()), signed_roles=signed, reasons=reasons,
    )
