"""The three artefacts of legal_ethics, as pydantic schemas: catalogue, checklist, record.

Rule: this is the only place that says what a catalogue item, a checklist definition, an
answer, a submission and a signed decision look like. Files are validated against these
models when read (``storage.parse_model``) and only these models are written back. Objects
are frozen; a change is a new object.

* catalogue item — one official requirement, measure or question, in our own words, with
  its official id (``urn:nl:ak:ver:grw-02``, ``urn:nl:aivt:tr:iama:1.0:1.1.1``,
  ``urn:nl:iama:2.0:1.3.1``, ``urn:nl:dpia:3.0:11``) and source;
* checklist definition — the items selected for one case from its profile, with blocking
  flag, answer type, evidence, roles and validity (``ethics/checklist.yaml``);
* response record — answers with rationale, author and evidence hashes
  (``ethics/answers.yaml``), submissions and signed decisions (``ethics/review.yaml``).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any, Literal

from idsp.defaults import APPROVAL_VALID_DAYS, APPROVAL_VALID_DAYS_MAX, GENERIC_CASE_TYPE
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_serializer,
    model_validator,
)

SCHEMA_VERSION = 1

# Role vocabulary: slugs of the Task Registry's suggested roles we use for sign-off.
ROLES: dict[str, str] = {
    "jurist": "Jurist",
    "privacy-officer": "Privacy-officer (FG)",
    "ethicus": "Ethicus",
    "gemandateerd-verantwoordelijke": "Gemandateerd verantwoordelijke",
    "projectleider": "Projectleider",
    "data-scientist": "Data scientist",
    "security-officer": "Security officer",
    "domeinspecialist": "Domeinspecialist",
    "informatiebeheerder": "Informatiebeheerder",
}

Instrument = Literal["ak", "iama", "iama-v1", "dpia", "prescan", "aiact", "profiling", "ds-ethics", "local"]
Kind = Literal["requirement", "measure", "question", "statement", "outcome"]
AnswerType = Literal["choice", "yes_no", "number", "text", "date", "metric_check"]
Decision = Literal["approve", "reject", "revoke"]
# What an approval allows on official data: "development" (build and evaluate the model, the
# runs that produce the reports "use" items are judged on) or "use" (everything, including
# registering the model). An approval for use also allows development.
Purpose = Literal["development", "use"]
PURPOSES: tuple[str, ...] = ("development", "use")

# The default answer scale for requirements and measures (voldaan = met).
COMPLIANCE_OPTIONS = ("voldaan", "deels", "niet_voldaan", "nvt")
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9._:-]{1,80}$")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _without_default(data: Any, key: str, default: Any) -> Any:
    """A serialised model without ``key`` when it holds ``default``: fields added later are
    left out at their defaults, so what was written (and hashed) before keeps its hash."""
    if isinstance(data, dict) and data.get(key) == default:
        data.pop(key, None)
    return data


def _role(v: str) -> str:
    if v not in ROLES:
        raise ValueError(f"unknown role {v!r}; known roles: {', '.join(ROLES)}")
    return v


class LegalRef(_Frozen):
    """A structured legal reference: act, article, link to the official text."""

    act: str
    article: str = ""
    url: str | None = None


class Tags(_Frozen):
    lifecycle: tuple[str, ...] = ()
    topic: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    ai_act: tuple[str, ...] = Field((), description="AI Act profile labels (risk group, role)")


class MetricCheck(_Frozen):
    """A number read from a JSON artefact of a run, compared with a threshold.

    ``path`` is dotted with optional list indexes: ``selection_rate.ratio`` or
    ``groups[0].fpr``. The artefact path is relative to the case root.
    """

    artifact: str
    path: str
    op: Literal[">=", ">", "<=", "<", "==", "!="] = ">="
    threshold: float
    explanation: str = ""
    justify_with: str | None = Field(
        None,
        description="key of a checklist item that must hold a justification (answered with one of its "
        "pass values, with rationale and evidence) when this check fails; None = a failure blocks",
    )

    @model_serializer(mode="wrap")
    def _omit_unset_justification(self, handler):
        return _without_default(handler(self), "justify_with", None)


class CatalogueItem(_Frozen):
    key: str = Field(description="local stable key, e.g. ak.grw-02")
    official_id: str | None = Field(None, description="URN of the official source; None for local items")
    instrument: Instrument
    instrument_version: str
    kind: Kind
    section: str = ""
    title: str
    text: str = ""
    title_en: str | None = None
    text_en: str | None = None
    legal_refs: tuple[LegalRef, ...] = ()
    tags: Tags = Field(default_factory=Tags)
    links: tuple[str, ...] = ()
    source_url: str | None = None
    upstream_name_sha256: str | None = Field(
        None, description="sha256 of the official title at the pinned commit (detects retitling)"
    )
    answer_type: AnswerType | None = None
    options: tuple[str, ...] = ()

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        if not KEY_RE.match(v):
            raise ValueError("lower-case letters, digits and . _ : -, 2-81 long")
        return v


class Upstream(_Frozen):
    repo: str | None = None
    commit: str | None = None
    license: str | None = None
    url: str | None = None


class Catalogue(_Frozen):
    id: str
    title: str
    instrument: Instrument
    version: str
    upstream: Upstream = Field(default_factory=Upstream)
    note: str = ""
    upstream_ids: tuple[str, ...] = Field(
        (), description="all official ids at the pinned commit, for catalogues that carry a selection"
    )
    items: tuple[CatalogueItem, ...]


class ChecklistItem(_Frozen):
    """One line of a case's checklist: a catalogue item plus how it is answered and judged."""

    key: str
    official_id: str | None = None
    instrument: Instrument
    instrument_version: str = ""
    kind: Kind
    section: str = ""
    title: str
    text: str = ""
    legal_refs: tuple[LegalRef, ...] = ()
    source_url: str | None = None
    links: tuple[str, ...] = ()
    why: str = Field("", description="why the profile selected this item")
    blocking: bool = False
    answer_type: AnswerType = "choice"
    options: tuple[str, ...] = ()
    pass_values: tuple[str, ...] = Field(
        (), description="answers that satisfy a blocking item (choice); empty = any answer"
    )
    expected: bool | None = Field(None, description="yes_no: the answer a blocking item needs")
    minimum: float | None = None
    maximum: float | None = None
    metric: MetricCheck | None = None
    required_evidence: tuple[str, ...] = Field((), description="kinds of evidence to attach")
    justification_required_for: tuple[str, ...] = Field(
        ("nvt", "deels"), description="answers that need a rationale"
    )
    responsible_role: str = "projectleider"
    reviewer_roles: tuple[str, ...] = ("jurist",)
    phase: Purpose = Field(
        "development",
        description="development: settled before any run on official data; use: judged on what such runs "
        "produce (e.g. a metric check on the fairness report), settled before the model is put to use",
    )

    @model_serializer(mode="wrap")
    def _omit_default_phase(self, handler):
        return _without_default(handler(self), "phase", "development")  # a "use" item is hashed with it

    @field_validator("responsible_role")
    @classmethod
    def _responsible(cls, v: str) -> str:
        return _role(v)

    @field_validator("reviewer_roles")
    @classmethod
    def _reviewers(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_role(x) for x in v)

    @model_validator(mode="after")
    def _consistent(self) -> ChecklistItem:
        if self.answer_type == "metric_check" and self.metric is None:
            raise ValueError(f"item {self.key}: answer_type metric_check needs `metric`")
        if self.answer_type == "choice" and not self.options:
            raise ValueError(f"item {self.key}: answer_type choice needs `options`")
        bad = [v for v in self.pass_values if v not in self.options]
        if bad:
            raise ValueError(f"item {self.key}: pass_values {bad} are not among the options")
        return self


class ChecklistDefinition(_Frozen):
    """``ethics/checklist.yaml``: what reviewers approve (together with the answers)."""

    schema_version: int = SCHEMA_VERSION
    id: str
    case_id: str
    case_type: str = GENERIC_CASE_TYPE
    title: str
    version: str = "1"
    created: date
    profile: dict[str, Any] = Field(default_factory=dict)
    prescan: dict[str, Any] = Field(default_factory=dict, description="DPIA pre-scan outcome")
    catalogues: dict[str, str] = Field(default_factory=dict, description="catalogue id -> version")
    signoff_roles: tuple[str, ...]
    validity_days: int = Field(APPROVAL_VALID_DAYS, ge=1, le=APPROVAL_VALID_DAYS_MAX)
    items: tuple[ChecklistItem, ...]

    @field_validator("signoff_roles")
    @classmethod
    def _roles(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("at least one sign-off role")
        return tuple(_role(x) for x in v)

    @model_validator(mode="after")
    def _unique(self) -> ChecklistDefinition:
        seen: set[str] = set()
        for item in self.items:
            if item.key in seen:
                raise ValueError(f"item key {item.key!r} appears twice")
            seen.add(item.key)
        for item in self.items:
            target = item.metric.justify_with if item.metric else None
            if target is not None and target not in seen:
                raise ValueError(f"item {item.key}: metric.justify_with names {target!r}, which is not an item")
        return self

    def item(self, key: str) -> ChecklistItem | None:
        return next((i for i in self.items if i.key == key), None)


class Evidence(_Frozen):
    path: str = Field(description="relative to the case root")
    sha256: str
    description: str = ""


class Answer(_Frozen):
    key: str
    value: str | float | bool | None
    rationale: str = ""
    author: str
    at: datetime
    evidence: tuple[Evidence, ...] = ()


class Answers(_Frozen):
    """``ethics/answers.yaml``."""

    schema_version: int = SCHEMA_VERSION
    case_id: str
    answers: dict[str, Answer] = Field(default_factory=dict)


class Submission(_Frozen):
    id: str
    by: str
    at: datetime
    content_sha256: str
    note: str = ""
    purpose: Purpose = "use"

    @model_serializer(mode="wrap")
    def _omit_default_purpose(self, handler):
        return _without_default(handler(self), "purpose", "use")


class SignedDecision(_Frozen):
    """A decision (approve, reject, revoke) signed with a reviewer's Ed25519 key.

    Only ``payload`` is signed; the other fields are copies for people and are never
    trusted by the gate.
    """

    id: str
    decision: Decision
    reviewer: str
    role: str
    at: datetime
    payload: dict[str, Any]
    public_key: str = Field(description="base64 raw Ed25519 public key")
    signature: str = Field(description="base64 Ed25519 signature over canonical_json(payload)")


class ReviewRecord(_Frozen):
    """``ethics/review.yaml``: submissions and signed decisions, append-only by convention."""

    schema_version: int = SCHEMA_VERSION
    case_id: str
    submissions: tuple[Submission, ...] = ()
    decisions: tuple[SignedDecision, ...] = ()
