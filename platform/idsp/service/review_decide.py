"""Review decisions on the hub: the service builds what is signed, checks it, and records it.

Rule: the service builds the exact payload a reviewer signs from the case's submitted
checklist with ``legal_ethics.workflow.decision_payload`` (the one format, also used by
`idsp ethics approve`), and accepts a signed decision only if (1) the signer is the hub user
who sent it and signed with one of their *active* keys in the service's registry, (2) the
Ed25519 signature verifies, (3) the payload is exactly the one the service builds now for
that user, role and moment (anything else: 409 "de ondertekende inhoud wijkt af van wat u is
getoond"), (4) the role is one the reviewer holds and the checklist requires, and (5) for an
approval, the reviewer neither answered items nor submitted, by the checklist's own record
or by the service's audit log (hub identities). Then the decision goes into the case's
``review.yaml`` under the case's ethics lock and the event into the service's log. Messages
are Dutch: reviewers read them on the page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr

from idsp.case_file import CASE_FILE, CaseFile, parse_case_file
from idsp.config import Paths, PlatformConfig
from idsp.errors import IdspError
from idsp.files import atomic_write
from idsp.service.registry import RegistryRefused, ReviewerRegistry
from legal_ethics import approvals, audit, checklist, state, workflow
from legal_ethics.canonical import canonical_json
from legal_ethics.reviewers import role_label, verify_signature
from legal_ethics.schema import PURPOSES, SignedDecision
from legal_ethics.storage import locked

KINDS = {"approve": "approved", "reject": "rejected", "revoke": "revoked"}
PURPOSE_NL = {"development": "ontwikkeling", "use": "gebruik"}
DIFFERS = "de ondertekende inhoud wijkt af van wat u is getoond"
# A payload is signed a few seconds to minutes after the page showed it; older ones are stale.
FRESH = timedelta(minutes=30)
BODY_FIELDS = frozenset({"purpose", "kind", "payload", "signature", "reason"})


class Refusal(RegistryRefused):
    """A decision the rules refuse; ``status`` is the HTTP answer."""


class ServiceConfig(PlatformConfig):
    """The service's own platform config: its log and its registry, never ``platform.yaml``.
    ``trust_answer`` makes ``legal_ethics.reviewers`` read the registry from the service's
    file in this process instead of asking the service over HTTP."""

    _registry: Any = PrivateAttr(None)
    _decisions: Any = PrivateAttr(None)

    def trust_answer(self) -> dict[str, Any]:
        return self._registry.trust()

    def decisions_for(self, case_id: str) -> list[dict[str, Any]]:
        return self._decisions.of(case_id) if self._decisions is not None else []


class DecisionStore:
    """The service's own record of the decisions it accepted, one JSON file per case
    (``<state>/decisions/<case>.json``, 0600, atomic): the gate reads them beside the case's
    ``review.yaml`` (``legal_ethics.reviewers.with_service_decisions``), so a decision counts
    even where the service may read but not write the case folder."""

    def __init__(self, folder: Path):
        self.folder = folder

    def _path(self, case_id: str) -> Path:
        if not case_id.replace("-", "").isalnum():
            raise Refusal(400, f"ongeldige zaak-id {case_id!r}")
        return self.folder / f"{case_id}.json"

    def of(self, case_id: str) -> list[dict[str, Any]]:
        path = self._path(case_id)
        if not path.exists():
            return []
        return list(json.loads(path.read_text(encoding="utf-8")))

    def add(self, case_id: str, decision: SignedDecision) -> None:
        self.folder.mkdir(mode=0o700, exist_ok=True)
        rows = [*self.of(case_id), decision.model_dump(mode="json")]
        atomic_write(self._path(case_id), json.dumps(rows, ensure_ascii=False, indent=1), mode=0o600)


def service_config(state_dir: Path, log_path: Path, registry: ReviewerRegistry) -> ServiceConfig:
    cfg = ServiceConfig(paths=Paths(home=state_dir, audit_log=log_path, reviewers=state_dir / "reviewers.yaml"))
    cfg._registry = registry
    cfg._decisions = DecisionStore(state_dir / "decisions")
    return cfg


def _at(value: Any) -> datetime:
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        raise Refusal(400, "het tijdstip `at` in de ondertekende inhoud is geen datum") from None
    if at.tzinfo is None:
        raise Refusal(400, "het tijdstip `at` in de ondertekende inhoud heeft geen tijdzone")
    return at


class Decisions:
    def __init__(self, registry: ReviewerRegistry, log: Any, config: ServiceConfig):
        self.registry = registry
        self.log = log  # idsp.service.auditlog.AuditLog
        self.config = config

    # --- what the reviewer signs -------------------------------------------------------

    def _key(self, user: str, public_key: str | None) -> dict[str, Any]:
        entry = self.registry.load()["reviewers"].get(user)
        if entry is None or not entry.get("keys"):
            raise Refusal(403, f"{user} is niet als beoordelaar aangemeld",
                          fix="Meld u aan op de pagina Aanmelden als beoordelaar; een beheerder keurt dat goed")
        keys = entry["keys"]
        if public_key is None:
            active = self.registry.active_keys(entry)
            chosen = next((k for k in reversed(active) if k["source"] == "webcrypto"), active[-1] if active else keys[-1])
        else:
            chosen = next((k for k in keys if k["public_key"] == public_key), None)
        if chosen is None:
            raise Refusal(403, f"deze sleutel hoort niet bij beoordelaar {user}",
                          fix="Onderteken met de sleutel waarmee u zich hebt aangemeld, of meld u opnieuw aan")
        if chosen["status"] == "pending":
            raise Refusal(403, "uw aanmelding als beoordelaar wacht nog op goedkeuring door een beheerder")
        if chosen["status"] == "revoked":
            raise Refusal(403, f"deze sleutel ({chosen['key_id']}) is ingetrokken op {str(chosen.get('revoked_at'))[:10]}",
                          fix="Meld u opnieuw aan met een nieuwe sleutel")
        return {**chosen, "roles": list(entry.get("roles", []))}

    def _state(self, case: CaseFile, purpose: str) -> state.ChecklistState:
        st = state.evaluate(case, config=self.config)
        if st.definition is None:
            raise Refusal(409, "deze zaak heeft nog geen checklist")
        if st.submission is None or st.submission.content_sha256 != st.content_sha256:
            raise Refusal(409, "er ligt niets ter beoordeling: de checklist is niet ingediend of daarna gewijzigd")
        if st.submission.purpose != purpose:
            raise Refusal(409, f"de checklist is ingediend voor {PURPOSE_NL[st.submission.purpose]}, "
                               f"niet voor {PURPOSE_NL.get(purpose, purpose)}")
        return st

    def _role(self, st: state.ChecklistState, key: dict[str, Any], role: str | None, user: str) -> str:
        assert st.definition is not None
        required = list(st.definition.signoff_roles)
        mine = [r for r in key["roles"] if r in required]
        if role is None:
            open_roles = [r for r in mine if r not in st.signed_roles]
            role = (open_roles or mine or [None])[0]
        if role is None or role not in key["roles"]:
            raise Refusal(403, f"{user} heeft niet de rol {role_label(role or '?')} in het register",
                          fix=f"Uw rollen: {', '.join(role_label(r) for r in key['roles']) or 'geen'}")
        if role not in required:
            raise Refusal(403, f"{role_label(role)} hoeft deze checklist niet te ondertekenen",
                          fix=f"Vereist: {', '.join(role_label(r) for r in required)}")
        return role

    def payload(self, case: CaseFile, user: str, *, kind: str, purpose: str, role: str | None = None,
                public_key: str | None = None, comment: str = "", at: datetime | None = None) -> dict[str, Any]:
        if kind not in KINDS:
            raise Refusal(400, f"`kind` moet approve, reject of revoke zijn, niet {kind!r}")
        if purpose not in PURPOSES:
            raise Refusal(400, f"`purpose` moet development of use zijn, niet {purpose!r}")
        return self._built(case, user, kind=kind, purpose=purpose, role=role, public_key=public_key,
                           comment=comment, at=at)[0]

    def _built(self, case: CaseFile, user: str, *, kind: str, purpose: str, role: str | None,
               public_key: str | None, comment: str, at: datetime | None) -> tuple[dict[str, Any], state.ChecklistState]:
        key = self._key(user, public_key)
        st = self._state(case, purpose)
        role = self._role(st, key, role, user)
        at = at or datetime.now(UTC).replace(microsecond=0)
        payload = workflow.decision_payload(case, st, decision=kind, role=role, reviewer=user,
                                            public_key=key["public_key"], at=at, comment=comment, config=self.config)
        return payload, st

    # --- recording a decision ----------------------------------------------------------

    def _answered_or_submitted(self, case: CaseFile, st: state.ChecklistState) -> dict[str, str]:
        """Who did what on this checklist: its own record and the service's log (hub identities)."""
        assert st.answers is not None and st.submission is not None
        did = {a.author: "items beantwoord" for a in st.answers.answers.values()}
        did.setdefault(st.submission.by, "ingediend")
        for e in audit.entries(path=self.log.path):
            if e.get("case_id") == case.id and e.get("event") in ("answered", "submitted"):
                did.setdefault(str(e.get("actor")), "items beantwoord" if e["event"] == "answered" else "ingediend")
        return did

    def decide(self, case: CaseFile, user: str, body: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(body) - BODY_FIELDS)
        if unknown:
            raise Refusal(400, f"onbekende velden: {', '.join(unknown)}")
        kind, purpose, signed = body.get("kind"), body.get("purpose"), body.get("payload")
        signature, reason = body.get("signature"), str(body.get("reason") or "")
        if not isinstance(signed, dict) or not isinstance(signature, str):
            raise Refusal(400, "`payload` (object) en `signature` (base64) zijn verplicht")
        if kind in ("reject", "revoke") and not reason.strip():
            raise Refusal(400, "een afwijzing of intrekking heeft een reden nodig", fix="Vul de reden in")
        if signed.get("reviewer") != user:
            raise Refusal(403, f"de ondertekende inhoud noemt {signed.get('reviewer')!r}, maar u bent {user!r} "
                               "(vastgesteld door de hub)")
        key = self._key(user, str(signed.get("public_key") or "") or None)
        if not verify_signature(key["public_key"], signature, canonical_json(signed)):
            raise Refusal(403, "de handtekening klopt niet bij deze inhoud en uw sleutel",
                          fix="Laad de pagina opnieuw en onderteken opnieuw")
        at = _at(signed.get("at"))
        now = datetime.now(UTC)
        if not now - FRESH <= at <= now + timedelta(minutes=1):
            raise Refusal(409, f"{DIFFERS}: het tijdstip van ondertekening ({signed.get('at')}) is verlopen",
                          fix="Laad de pagina opnieuw en onderteken opnieuw")
        if kind not in KINDS or purpose not in PURPOSES:
            raise Refusal(400, "`kind` (approve, reject, revoke) of `purpose` (development, use) klopt niet")
        with self._case_lock(case):
            expected, st = self._built(case, user, kind=str(kind), purpose=str(purpose), role=str(signed.get("role")),
                                       public_key=key["public_key"], comment=reason, at=at)
            if expected != signed:
                changed = sorted(k for k in set(expected) | set(signed) if expected.get(k) != signed.get(k))
                raise Refusal(409, f"{DIFFERS} (verschil in: {', '.join(changed)})",
                              fix="Laad de pagina opnieuw, bekijk de huidige inhoud en onderteken die")
            self._allowed(case, st, user, str(kind))
            decision = SignedDecision(
                id=approvals.decision_id(signature), decision=str(kind), reviewer=user, role=expected["role"],
                at=at, payload=signed, public_key=key["public_key"], signature=signature)
            self.config._decisions.add(case.id, decision)
            written = self._into_case(case, decision)
        self.registry.note_decision(user, key["key_id"], decision.id)
        assert st.submission is not None
        entry = self.log.append(KINDS[str(kind)], actor=user, case_id=case.id, data={
            "decision_id": decision.id, "role": decision.role, "submission_id": st.submission.id,
            "content_sha256": st.content_sha256, "comment": reason, "purpose": purpose,
            "key_id": key["key_id"], "source": key["source"]})
        after = state.evaluate(case, config=self.config)
        return {"decision_id": decision.id, "seq": entry["seq"], "status": after.status,
                "signed_roles": after.signed_roles, "reasons": after.reasons, "in_case_folder": written}

    @contextmanager
    def _case_lock(self, case: CaseFile) -> Iterator[None]:
        """The case's ethics lock, as every writer of review.yaml takes it; where the service
        may only read the case folder, its own lock for the case (its record is its own)."""
        with ExitStack() as stack:
            try:
                stack.enter_context(locked(checklist.lock_path(case)))
            except PermissionError:
                self.config._decisions.folder.mkdir(mode=0o700, exist_ok=True)
                stack.enter_context(locked(self.config._decisions.folder / f".{case.id}.lock"))
            yield

    @staticmethod
    def _into_case(case: CaseFile, decision: SignedDecision) -> bool:
        """Also into the case's review.yaml, where the service may write (else the gate reads
        the service's own record only)."""
        try:
            review = checklist.load_review(case)
            checklist.save(case, checklist.REVIEW_FILE,
                           review.model_copy(update={"decisions": (*review.decisions, decision)}))
        except PermissionError:
            return False
        return True

    def _allowed(self, case: CaseFile, st: state.ChecklistState, user: str, kind: str) -> None:
        if kind == "approve":
            did = self._answered_or_submitted(case, st).get(user)
            if did:
                raise Refusal(403, f"u ({user}) heeft in deze checklist {did}; wie meewerkte keurt niet goed "
                                   "(vier-ogen)", fix="Een andere beoordelaar met deze rol keurt goed")
            if st.status not in ("in_review",):
                raise Refusal(409, f"de checklist is {st.status}, niet ter beoordeling")
        if kind == "revoke" and st.status not in ("approved", "expired", "in_review"):
            raise Refusal(409, f"de checklist is {st.status}; er is geen goedkeuring om in te trekken")


def open_case(path: Path) -> CaseFile:
    """The case at exactly ``path`` (never a folder above it)."""
    try:
        return CaseFile(path, parse_case_file(path / CASE_FILE))
    except IdspError as exc:
        raise Refusal(409, f"de zaak kan niet worden gelezen: {exc.what}") from None


@dataclass
class ReviewParts:
    registry: ReviewerRegistry
    decisions: Decisions


def review_parts(service: Any) -> ReviewParts:
    """The registry and decisions of ``service`` (an ``app.Service``), made once beside its
    log: ``<state>/reviewers.json``."""
    if service.review is None:
        state_dir = Path(service.log.folder).parent
        registry = ReviewerRegistry(state_dir / "reviewers.json", service.log)
        config = service_config(state_dir, service.log.path, registry)
        service.review = ReviewParts(registry, Decisions(registry, service.log, config))
    return service.review
