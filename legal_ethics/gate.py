"""The run gate: may this case run on these datasets now? The one place that decides it.

Rule: a run on official data (any dataset that is personal or real, ``Dataset.official``)
starts only if the case's checklist is approved by every required role with valid signed
approvals, for exactly the checklist content, evidence, data versions, code and parameters
that are about to run, no approval has expired, and every dataset with a suite has a
passed, unedited quality result made on the data as it is now (``quality_evidence``).
The approval binds case.yaml too (``bindings.case_binding``), the code is the committed
git tree (a dirty tree or loose importable code refuses the run), and the checklist must be
the one the profile gives (``profiles.definition_problems``). Exploratory runs (synthetic,
non-personal data only) are allowed, unless an approval saw one of their datasets as real
or personal data and case.yaml was re-declared since. ``idsp ethics
verify``, ``case.run``, the DVC stages (through ``case.run``) and model registration all
ask ``check``, so they cannot disagree. This module never writes: the caller logs the
decision (``idsp ethics verify`` writes ``gate.checked``, tracking writes ``run.started``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from idsp.errors import GateRefused, IdspError, UserError

from legal_ethics import bindings as _bindings
from legal_ethics import checklist, profiles, quality_evidence, state
from legal_ethics.quality_evidence import QualityEvidence
from legal_ethics.reviewers import role_label
from legal_ethics.schema import PURPOSES, Purpose

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile
    from idsp.config import PlatformConfig


@dataclass(frozen=True)
class GateDecision:
    allowed: bool
    official: bool
    reasons: list[str] = field(default_factory=list)
    checklist_hash: str | None = None
    approval_ids: list[str] = field(default_factory=list)
    bindings: dict[str, Any] = field(default_factory=dict)
    status: str = "none"
    warnings: list[str] = field(default_factory=list)  # e.g. a stray forged decision that did not count
    purpose: str = "use"  # what the run asked for: development or use (see schema.Purpose)
    quality: tuple[QualityEvidence, ...] = ()  # what the gate read; runs are tagged with it

    def as_dict(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed, "official": self.official, "status": self.status,
            "reasons": self.reasons, "checklist_hash": self.checklist_hash,
            "approval_ids": self.approval_ids, "bindings": self.bindings, "warnings": self.warnings,
            "purpose": self.purpose,
        }


def _short(h: Any) -> str:
    return f"{h[:12]}…" if isinstance(h, str) and len(h) > 12 else str(h)


def _binding_reasons(
    case: CaseFile, approved: list, now_bindings: dict[str, Any], datasets: list[str], roles: list[str],
) -> list[str]:
    reasons: list[str] = []
    seen: set[str] = set()

    def add(text: str) -> None:
        if text not in seen:
            seen.add(text)
            reasons.append(text)

    for v in approved:
        old = v.payload.get("bindings", {})
        who = f"approval {v.decision.id} by {v.payload['reviewer']} ({role_label(v.payload['role'])})"
        if "data" in now_bindings:
            for name in datasets:
                if name not in (old.get("data") or {}):
                    add(f"dataset {name} was not in scope when {who} was given; submit again so reviewers see it")
                    continue
                before, after = old["data"][name], now_bindings["data"].get(name)
                if before != after:
                    add(f"dataset {name} changed since {who}: DVC md5 {_short(before)} -> {_short(after)}")
        for key, what in (("code", "the code (the committed git tree; outside git every file of the case)"),
                          ("environment", "the platform's Python environment (the installed packages)"),
                          ("params", "params.yaml")):
            if key in now_bindings and old.get(key) != now_bindings[key]:
                hint = ("; run it in the platform's environment, without packages of your own (`pip list --user`), "
                        "or have the platform's new environment approved") if key == "environment" else ""
                add(f"{what} changed since {who}: sha256 {_short(old.get(key))} -> {_short(now_bindings[key])}{hint}")
        add_case = _case_reason(old.get("case"), now_bindings["case"], who, roles)
        if add_case:
            add(add_case)
    return reasons


def _case_reason(old: Any, now: dict[str, Any], who: str, roles: list[str]) -> str | None:
    """case.yaml is bound by every approval: its datasets, policy (``approval_binds`` too) and profile."""
    again = f"submit again (`idsp ethics submit`) and have every sign-off role ({', '.join(roles)}) approve again"
    if not isinstance(old, dict) or "sha256" not in old:
        return f"{who} does not bind case.yaml (it was given before IDSP bound it); {again}"
    if old["sha256"] == now["sha256"]:
        return None
    return f"case.yaml changed since {who}: {'; '.join(_bindings.case_changes(old, now))}; {again}"


def _declared_down(case: CaseFile, datasets: list[str], verdicts: list, config: PlatformConfig | None) -> list[str]:
    """Datasets that an approval (signed payload) or the audit log's record of one saw as real
    or personal data, and that case.yaml now declares synthetic and non-personal: re-declaring
    them must not turn a run on real data into an exploratory one."""
    from legal_ethics import audit

    seen: dict[str, str] = {}
    for v in verdicts:
        if v.ok and v.decision.decision == "approve":
            declared = ((v.payload.get("bindings") or {}).get("case") or {}).get("datasets") or {}
            for name, d in declared.items():
                if isinstance(d, dict) and (d.get("personal_data") or not d.get("synthetic", True)):
                    seen.setdefault(name, f"approval {v.decision.id} by {v.payload.get('reviewer')}")
    try:
        log = [e for e in audit.entries(config=config) if e.get("case_id") == case.id and e.get("event") == "approved"]
    except IdspError:
        log = []
    for e in log:
        for name in (e.get("data") or {}).get("official_datasets") or []:
            seen.setdefault(name, f"approval {(e.get('data') or {}).get('decision_id')} (audit log seq {e.get('seq')})")
    return [
        f"dataset {name} was declared real or personal data when {seen[name]} was given; case.yaml now "
        "declares it synthetic and non-personal, which would make a run on it exploratory. Restore its "
        "declaration, or submit the change for review and have it approved"
        for name in datasets if name in seen and not case.dataset(name).official
    ]


def check(
    case: CaseFile,
    datasets: Sequence[str],
    *,
    purpose: Purpose = "use",
    config: PlatformConfig | None = None,
    now: datetime | None = None,
) -> GateDecision:
    """May a run for ``purpose`` ("development": build and evaluate; "use": everything,
    registering the model included) start on these datasets now?"""
    if purpose not in PURPOSES:
        raise UserError(f"unknown run purpose {purpose!r}", fix=f"Use one of: {', '.join(PURPOSES)}")
    datasets = list(dict.fromkeys(datasets))
    official = any(case.dataset(name).official for name in datasets)
    bindings_now = _bindings.compute(case, datasets)
    checklist_hash = bindings_now.get("checklist") if "checklist" in bindings_now else _bindings.checklist_hash(case)
    evidence = quality_evidence.read_all(case, datasets)
    if not official:
        verdicts: list = []
        try:
            st0 = state.evaluate(case, config=config, now=now)
            status, verdicts = st0.status, st0.verdicts
        except IdspError:
            status = "invalid"  # an exploratory run does not depend on the checklist
        down = _declared_down(case, datasets, verdicts, config)
        return GateDecision(
            allowed=not down, official=bool(down), reasons=down, checklist_hash=checklist_hash,
            bindings=bindings_now, status=status, purpose=purpose, quality=evidence,
        )

    st = state.evaluate(case, config=config, now=now)
    reasons = list(st.reasons) if st.status != "approved" else []
    if st.definition is not None and st.definition.profile.get("ai_act_risk") == "prohibited":
        reasons.append(
            "the case profile classifies this as a prohibited AI practice (AI Act art. 5): "
            "no approval can allow a run; stop development (IAMA 1.3.3)"
        )
    if st.status == "approved" and purpose == "use" and st.purpose == "development":
        waiting = sorted(checklist.use_items(st.definition)) if st.definition is not None else []
        reasons.append(
            "the checklist is approved for development only: runs on official data may build and evaluate "
            "the model, not put it to use. Answer the items of phase use"
            + (f" ({', '.join(waiting)})" if waiting else "")
            + " from those runs' reports, submit for use and have it approved"
        )
    if st.definition is not None:
        reasons.extend(profiles.definition_problems(case, st.definition))
    if "code" in bindings_now:
        reasons.extend(_bindings.code_problems(case))
    if st.definition is not None and st.answers is not None:
        skip = checklist.use_items(st.definition) if purpose == "development" else set()
        reasons.extend(checklist.evidence_problems(case, st.answers, skip))
        reasons.extend(checklist.item_problems(case, st.definition, st.answers, skip))
    if st.approvals:
        roles = [role_label(r) for r in st.definition.signoff_roles] if st.definition is not None else []
        reasons.extend(_binding_reasons(case, st.approvals, bindings_now, datasets, roles))
    if "data" in bindings_now:
        for name in datasets:
            recorded = bindings_now["data"].get(name)
            if recorded is None and case.dataset(name).official:
                reasons.append(
                    f"dataset {name} has no DVC record ({case.dataset(name).path}.dvc or dvc.lock), so its "
                    "version cannot be bound; run `dvc add` on it"
                )
            else:
                actual = _bindings.workspace_mismatch(case, name, recorded)
                if actual:
                    reasons.append(
                        f"dataset {name}: the file differs from its DVC record (md5 {_short(recorded)} "
                        f"recorded, {_short(actual)} on disk); run `dvc add` and have it re-approved"
                    )
    reasons.extend(quality_evidence.problems(evidence))
    if st.status != "approved" and not reasons:
        reasons.append(f"the checklist status is {st.status}")
    return GateDecision(
        allowed=not reasons, official=True, reasons=reasons, checklist_hash=st.content_sha256,
        approval_ids=st.approval_ids, bindings=bindings_now, status=st.status,
        warnings=list(st.reasons) if st.status == "approved" else [], purpose=purpose, quality=evidence,
    )


def require(
    case: CaseFile, datasets: Sequence[str], config: PlatformConfig | None = None, purpose: Purpose = "use",
) -> GateDecision:
    """``check`` and raise ``GateRefused`` (exit 1) with the reasons when not allowed."""
    decision = check(case, datasets, purpose=purpose, config=config)
    if not decision.allowed:
        raise GateRefused(
            f"the run gate refused a run of case {case.id} on {', '.join(datasets)}",
            reasons=decision.reasons,
        )
    return decision
