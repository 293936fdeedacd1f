"""The review workflow: answer, submit, approve, reject, revoke.

Rule: every step is a read-modify-write of one file in the case's ``ethics/`` folder under
the case's ethics lock, followed by one audit entry; nothing is ever deleted from
``review.yaml``. The steps refuse early and say why (self-approval, wrong role, nothing
submitted, a checklist weaker than its profile requires: ``profiles.definition_problems``); the gate still re-checks everything, because files can be edited by hand.

Status moves: draft --submit--> in_review --approve (all roles)--> approved;
in_review --reject--> rejected; approved --revoke--> revoked; any edit of the content
after submission --> draft; approvals older than the validity period --> expired.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from idsp.errors import Refused, UserError

from legal_ethics import approvals, audit, checklist, profiles, state
from legal_ethics import bindings as _bindings
from legal_ethics.canonical import sha256_file, sha256_hex
from legal_ethics.reviewers import acting_user, load_key, load_registry, role_label
from legal_ethics.schema import PURPOSES, Answer, ChecklistItem, Evidence, Purpose, Submission
from legal_ethics.storage import locked

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile
    from idsp.config import PlatformConfig


def _now(now: datetime | None) -> datetime:
    return (now or datetime.now(UTC)).replace(microsecond=0)


def _config(config: PlatformConfig | None = None):
    if config is not None:
        return config
    from idsp.config import load_config

    return load_config()


def parse_value(item: ChecklistItem, raw: Any) -> Any:
    """Turn a command-line value into the item's answer type, or say what is allowed."""
    where = f"item {item.key}"
    if item.answer_type == "choice":
        if raw not in item.options:
            raise UserError(f"{raw!r} is not an option", where=where, fix=f"Answer one of: {', '.join(item.options)}")
        return raw
    if item.answer_type == "yes_no":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in ("yes", "ja", "true", "y", "j"):
            return True
        if text in ("no", "nee", "false", "n"):
            return False
        raise UserError(f"{raw!r} is not yes or no", where=where, fix="Answer yes/ja or no/nee")
    if item.answer_type == "number":
        try:
            return float(str(raw).replace(",", "."))
        except ValueError:
            raise UserError(f"{raw!r} is not a number", where=where, fix="Answer a number such as 0.05") from None
    if item.answer_type == "date":
        try:
            return date.fromisoformat(str(raw)).isoformat()
        except ValueError:
            raise UserError(f"{raw!r} is not a date", where=where, fix="Answer as YYYY-MM-DD") from None
    if item.answer_type == "text":
        if not str(raw).strip():
            raise UserError("the answer is empty", where=where, fix="Write the answer")
        return str(raw)
    raise UserError("a metric check is answered from its artefact", where=where,
                    fix=f"Run `idsp ethics answer {item.key}` without a value after the pipeline wrote {item.metric.artifact if item.metric else 'it'}")


def answer(
    case: CaseFile, key: str, value: Any = None, *, rationale: str = "", evidence: list[str] | tuple[str, ...] = (),
    actor: str | None = None, now: datetime | None = None, config: PlatformConfig | None = None,
) -> Answer:
    """Answer one item (see ``answer_many``)."""
    entry = {"key": key, "value": value, "rationale": rationale, "evidence": list(evidence)}
    return answer_many(case, [entry], actor=actor, now=now, config=config)[0]


def answer_many(
    case: CaseFile, entries: list[dict[str, Any]], *, actor: str | None = None, now: datetime | None = None, config: PlatformConfig | None = None,
) -> list[Answer]:
    """Answer several items at once: all or nothing, one write, one audit entry.

    Each entry is ``{key, value, rationale, evidence: [paths]}``; a metric check takes no
    value (it is read from its artefact, which becomes evidence).
    """
    actor = acting_user(actor)
    with locked(checklist.lock_path(case)):
        defn = checklist.load_definition(case)
        made = [_make_answer(case, defn, entry, actor=actor, at=_now(now)) for entry in entries]
        answers = checklist.load_answers(case)
        updated = answers.model_copy(update={"answers": {**answers.answers, **{a.key: a for a in made}}})
        checklist.save(case, checklist.ANSWERS_FILE, updated)
    audit.append(
        "answered", actor=actor, case_id=case.id, config=config,
        answers={a.key: a.value for a in made},
        evidence={e.path: e.sha256 for a in made for e in a.evidence},
    )
    return made


def _make_answer(case: CaseFile, defn, entry: dict[str, Any], *, actor: str, at: datetime) -> Answer:
    unknown = set(entry) - {"key", "value", "rationale", "evidence"}
    if unknown or "key" not in entry:
        raise UserError(f"an answer has keys {sorted(entry)}", where="answers",
                        fix="Give key, value, rationale and evidence only")
    key, value = str(entry["key"]), entry.get("value")
    rationale = str(entry.get("rationale") or "")
    item = defn.item(key)
    if item is None:
        raise UserError(
            f"there is no item {key!r} in this checklist", where=str(checklist.checklist_path(case)),
            fix="See the keys with `idsp ethics status --items`",
        )
    paths = [str(p) for p in entry.get("evidence") or []]
    if item.answer_type == "metric_check":
        if value is not None:
            raise UserError("a metric check takes no value", where=f"item {key}",
                            fix=f"Run `idsp ethics answer {key}`; the value is read from {item.metric.artifact}")
        result = checklist.evaluate_metric(case, item.metric)
        if result.value is None:
            raise UserError(result.detail, where=f"item {key}", fix="Produce the artefact, then answer again")
        value = result.value
        rationale = rationale or result.detail
        paths = [item.metric.artifact, *paths]
    elif value is None:
        raise UserError("no answer given", where=f"item {key}", fix="Give the answer as the second argument")
    else:
        value = parse_value(item, value)
    root = Path(case.root).resolve()
    evs = []
    for raw in dict.fromkeys(paths):
        path = (root / raw).resolve() if not Path(raw).is_absolute() else Path(raw).resolve()
        if not path.is_file():
            raise UserError("evidence file not found", where=str(raw), fix="Give a file inside the case folder")
        if root not in path.parents:
            raise UserError("evidence must be inside the case folder, so reviewers can open it",
                            where=str(raw), fix="Copy it into the case (e.g. docs/ or reports/) first")
        evs.append(Evidence(path=str(path.relative_to(root)), sha256=sha256_file(path)))
    return Answer(key=key, value=value, rationale=rationale, author=actor, at=at, evidence=tuple(evs))


def submit(
    case: CaseFile, *, actor: str | None = None, note: str = "", purpose: str = "use", now: datetime | None = None,
    config: PlatformConfig | None = None,
) -> Submission:
    """Put the checklist in review, for ``purpose`` "use" (every blocking item answered) or
    "development" (the blocking items of phase "use" may wait for the runs it allows)."""
    if purpose not in PURPOSES:
        raise UserError(f"unknown purpose {purpose!r}", fix=f"Use one of: {', '.join(PURPOSES)}")
    actor = acting_user(actor)
    with locked(checklist.lock_path(case)):
        st = state.evaluate(case, config=config, now=now)
        if (st.status in ("in_review", "approved") and st.submission
                and st.submission.content_sha256 == st.content_sha256 and st.submission.purpose == purpose):
            raise Refused(f"this checklist content is already {st.status} (submission {st.submission.id})",
                          where=str(checklist.ethics_dir(case)), fix="Change an answer first, or revoke the approval")
        definition, answers, review, content = st.loaded()
        weaker = profiles.definition_problems(case, definition)
        if weaker:
            raise Refused("the checklist is weaker than the one the case profile requires: " + "; ".join(weaker),
                          where=str(checklist.checklist_path(case)),
                          fix="Rebuild it from case.yaml with `idsp ethics init --force`, answer it, and submit again")
        use_items = checklist.use_items(definition)
        waiting = use_items if purpose == "development" else set()
        missing = [i.key for i in definition.items
                   if i.blocking and i.key not in answers.answers and i.key not in waiting]
        if missing:
            later = (" (or submit for development first: --purpose development)"
                     if purpose == "use" and set(missing) <= use_items else "")
            raise Refused(
                f"blocking items are not answered: {', '.join(missing)}", where=str(checklist.ethics_dir(case)),
                fix=f"Answer them with `idsp ethics answer KEY VALUE` before submitting{later}",
            )
        at = _now(now)
        sub = Submission(
            id="sub-" + sha256_hex(f"{content}|{actor}|{at.isoformat()}|{purpose}".encode())[:12],
            by=actor, at=at, content_sha256=content, note=note,
            purpose=cast(Purpose, purpose),  # checked against PURPOSES above
        )
        checklist.save(case, checklist.REVIEW_FILE, review.model_copy(update={"submissions": (*review.submissions, sub)}))
    audit.append("submitted", actor=actor, case_id=case.id, config=config, submission_id=sub.id,
                 content_sha256=sub.content_sha256, purpose=purpose)
    return sub


def validity_days(case: CaseFile, definition, config: PlatformConfig) -> int:
    """How long an approval is valid: the strictest of the values someone actually set.

    The checklist definition carries ``idsp.defaults.APPROVAL_VALID_DAYS`` (the
    three-year DPIA review cycle). A ``policy.approval_valid_days`` written in case.yaml,
    or ``ethics.approval_valid_days`` written in platform.yaml, shortens it; their
    built-in defaults (the same value) do not count. The review page shows this value.
    """
    days = [definition.validity_days]
    if "approval_valid_days" in case.spec.policy.model_fields_set:
        days.append(case.spec.policy.approval_valid_days)
    if "approval_valid_days" in config.ethics.model_fields_set:
        days.append(config.ethics.approval_valid_days)
    return min(days)


def decision_payload(
    case: CaseFile, st: state.ChecklistState, *, decision: str, role: str, reviewer: str, public_key: str,
    at: datetime, comment: str, config: PlatformConfig,
) -> dict[str, Any]:
    """What a reviewer signs for ``decision`` on the latest submission in ``st``: the one
    format, built here for `idsp ethics approve` and for the platform service's review page."""
    definition, answers, _, content = st.loaded()
    if st.submission is None:
        raise Refused("there is nothing in review: the checklist was not submitted",
                      fix="Submit it first with `idsp ethics submit`")
    official = [d.name for d in case.spec.datasets if d.official]
    valid_days = validity_days(case, definition, config)
    return approvals.build_payload(
        decision=decision, case_id=case.id, checklist_id=definition.id, submission_id=st.submission.id,
        content_sha256=content, item_hashes=checklist.item_hashes(definition, answers),
        evidence=checklist.evidence_hashes(answers), bindings=_bindings.compute(case, official),
        role=role, reviewer=reviewer, public_key=public_key, at=at,
        valid_days=valid_days if decision == "approve" else None, comment=comment, purpose=st.submission.purpose,
    )


def _decide_on_hub(case: CaseFile, decision: str, *, role: str, key_path: Path | None, comment: str):
    """The service builds the payload (the same ``decision_payload``), the key file signs it,
    the service checks and records it: the key must be enrolled there (``source: cli``)."""
    from idsp.service import link

    from legal_ethics.schema import SignedDecision

    key = load_key(key_path)
    service = link.hub_service()
    sub = state.evaluate(case).submission
    purpose = sub.purpose if sub else "use"
    shown = service.decision_payload(case.id, kind=decision, purpose=purpose, role=role,
                                     public_key=key.public_key, comment=comment)
    signature = key.sign(shown["canonical"].encode("utf-8"))
    service.decide(case.id, {"purpose": purpose, "kind": decision, "payload": shown["payload"],
                             "signature": signature, "reason": comment})
    p = shown["payload"]
    return SignedDecision(id=approvals.decision_id(signature), decision=p["decision"], reviewer=p["reviewer"],
                          role=p["role"], at=datetime.fromisoformat(p["at"]), payload=p,
                          public_key=key.public_key, signature=signature)


def decide(
    case: CaseFile, decision: str, *, role: str, key_path: Path | None = None, comment: str = "",
    actor: str | None = None, now: datetime | None = None, config: PlatformConfig | None = None,
):
    """Sign and record an approve, reject or revoke decision by the holder of ``key_path``.
    On the hub the platform service records it (``_decide_on_hub``)."""
    from idsp.service import link

    if link.on_hub():
        acting_user(actor)
        return _decide_on_hub(case, decision, role=role, key_path=key_path, comment=comment)
    cfg = _config(config)
    actor = acting_user(actor)
    key = load_key(key_path)
    registry = load_registry(cfg)
    reviewer = registry.by_key(key.public_key)
    if reviewer is None:
        raise Refused(
            "your key is not in the reviewer registry", where=str(key.path),
            fix="Ask the platform admin to run `idsp ethics reviewer add` with your public key",
        )
    if reviewer.username != actor:
        raise Refused(
            f"this key belongs to reviewer {reviewer.username}, but you are {actor}", where=str(key.path),
            fix="Sign with your own key",
        )
    if role not in reviewer.roles:
        raise Refused(f"{actor} does not hold the role {role_label(role)}",
                      fix=f"Sign as one of your roles: {', '.join(reviewer.roles)}")
    if decision in ("reject", "revoke") and not comment.strip():
        raise UserError(f"a {decision} needs a reason", fix="Pass --reason TEXT")
    with locked(checklist.lock_path(case)):
        st = state.evaluate(case, config=cfg, now=now)
        sub = st.submission
        if sub is None or sub.content_sha256 != st.content_sha256:
            raise Refused("there is nothing in review: the checklist was not submitted or changed since",
                          fix="Submit it first with `idsp ethics submit`")
        definition, answers, _, content = st.loaded()
        submitted = [e for e in audit.entries(config=cfg) if e.get("event") == "submitted"
                     and e.get("case_id") == case.id and (e.get("data") or {}).get("submission_id") == sub.id]
        if submitted and submitted[-1]["data"].get("purpose", "use") != sub.purpose:
            raise Refused(
                f"review.yaml says submission {sub.id} is for {sub.purpose}, but it was submitted for "
                f"{submitted[-1]['data'].get('purpose', 'use')} (audit log seq {submitted[-1]['seq']})",
                where=str(checklist.ethics_dir(case)), fix="Restore review.yaml, or submit again",
            )
        if role not in definition.signoff_roles:
            raise Refused(
                f"{role_label(role)} is not a sign-off role of this checklist",
                fix=f"Sign as one of: {', '.join(definition.signoff_roles)}",
            )
        if decision == "approve":
            if actor == sub.by or actor in {a.author for a in answers.answers.values()}:
                raise Refused(f"{actor} answered or submitted this checklist and may not approve it (four-eyes)",
                              fix="Another reviewer with the role must approve")
            if st.status != "in_review":
                raise Refused(f"the checklist is {st.status}, not in review", fix="Submit it again first")
        if decision == "revoke" and st.status not in ("approved", "expired", "in_review"):
            raise Refused(f"the checklist is {st.status}; there is no approval to revoke")
        payload = decision_payload(case, st, decision=decision, role=role, reviewer=reviewer.username,
                                   public_key=key.public_key, at=_now(now), comment=comment, config=cfg)
        signed = approvals.sign(payload, key)
        review = checklist.load_review(case)
        checklist.save(case, checklist.REVIEW_FILE, review.model_copy(update={"decisions": (*review.decisions, signed)}))
    event = {"approve": "approved", "reject": "rejected", "revoke": "revoked"}[decision]
    audit.append(event, actor=actor, case_id=case.id, config=cfg, decision_id=signed.id, role=role,
                 submission_id=sub.id, content_sha256=st.content_sha256, comment=comment,
                 official_datasets=[d.name for d in case.spec.datasets if d.official])  # the gate keeps them official (gate._declared_down)
    return signed
