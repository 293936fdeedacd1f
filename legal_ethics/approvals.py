"""Signed decisions: how an approval, rejection or revocation is made and when it counts.

Rule: a decision counts only if (1) its Ed25519 signature verifies over the canonical JSON
of its payload with the public key in the payload, (2) that key belongs to a reviewer in
the platform registry whose entry the audit log vouches for, (3) the payload names that
reviewer and a role the reviewer holds, and (4) it is for this case and this checklist.
Anything else in the review file (display copies, ids) is never trusted. Copying a
signature to another case, role, checklist content or reviewer breaks (1) or (4).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from legal_ethics.canonical import canonical_json, sha256_hex
from legal_ethics.reviewers import KeyPair, Registry, verify_signature
from legal_ethics.schema import SignedDecision

PAYLOAD_KIND = "idsp-ethics-decision/1"


def build_payload(
    *, decision: str, case_id: str, checklist_id: str, submission_id: str, content_sha256: str,
    item_hashes: dict[str, str], evidence: dict[str, str], bindings: dict[str, Any], role: str,
    reviewer: str, public_key: str, at: datetime, valid_days: int | None, comment: str = "",
    purpose: str = "use",
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "kind": PAYLOAD_KIND,
        "decision": decision,
        "case_id": case_id,
        "checklist_id": checklist_id,
        "submission_id": submission_id,
        "purpose": purpose,
        "content_sha256": content_sha256,
        "items": item_hashes,
        "evidence": evidence,
        "bindings": bindings,
        "role": role,
        "reviewer": reviewer,
        "public_key": public_key,
        "at": at.isoformat(),
        "comment": comment,
    }
    if valid_days is not None:
        payload["expires_at"] = (at + timedelta(days=valid_days)).isoformat()
    return payload


def decision_id(signature: str) -> str:
    return "dec-" + sha256_hex(signature.encode())[:12]


def sign(payload: dict[str, Any], key: KeyPair) -> SignedDecision:
    signature = key.sign(canonical_json(payload))
    return SignedDecision(
        id=decision_id(signature),
        decision=payload["decision"],
        reviewer=payload["reviewer"],
        role=payload["role"],
        at=datetime.fromisoformat(payload["at"]),
        payload=payload,
        public_key=payload["public_key"],
        signature=signature,
    )


@dataclass(frozen=True)
class Verdict:
    decision: SignedDecision
    problem: str | None  # None = the signature and signer are trustworthy

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def payload(self) -> dict[str, Any]:
        return self.decision.payload


def check(
    d: SignedDecision, *, registry: Registry, vouched: dict[str, str], case_id: str, checklist_id: str
) -> Verdict:
    p = d.payload
    who = f"{d.decision} {d.id} by {p.get('reviewer', '?')} as {p.get('role', '?')}"
    if p.get("kind") != PAYLOAD_KIND:
        return Verdict(d, f"{who} does not count: unknown payload kind {p.get('kind')!r}")
    if p.get("public_key") != d.public_key or not verify_signature(d.public_key, d.signature, canonical_json(p)):
        return Verdict(d, f"{who} does not count: the signature is invalid (the record was edited or forged)")
    if d.id != decision_id(d.signature):
        return Verdict(d, f"{who} does not count: its id does not match its signature (copied record)")
    reviewer = registry.by_key(d.public_key)
    if reviewer is None:
        return Verdict(d, f"{who} does not count: it was signed with a key that is not in the reviewer registry")
    # vouched by the audit log (per user), or on the hub by the service (per active key, or
    # per decision it verified with a key revoked since: reviewers.hub_trust)
    if reviewer.fingerprint not in (vouched.get(reviewer.username), vouched.get(d.public_key), vouched.get(d.id)):
        return Verdict(
            d,
            f"{who} does not count: the registry entry of {reviewer.username} was changed outside "
            "`idsp ethics reviewer add` (it does not match the audit log)",
        )
    if p.get("reviewer") != reviewer.username:
        return Verdict(d, f"{who} does not count: the key belongs to {reviewer.username}, not {p.get('reviewer')}")
    if p.get("role") not in reviewer.roles:
        return Verdict(
            d, f"{who} does not count: {reviewer.username} does not hold the role {p.get('role')} in the registry"
        )
    if p.get("case_id") != case_id or p.get("checklist_id") != checklist_id:
        return Verdict(
            d, f"{who} does not count: it was signed for case {p.get('case_id')} / checklist "
            f"{p.get('checklist_id')}, not this one (copied from elsewhere)"
        )
    return Verdict(d, None)
