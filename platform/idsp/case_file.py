"""The case file: a case project's folder and its ``case.yaml``, parsed.

Rule: ``case.yaml`` is parsed once, here, into frozen pydantic objects; every other part
of IDSP (checklist, gate, quality, tracking, templates) reads the case through
``CaseFile``. This module sits low: it imports nothing of IDSP but the errors and the bounded
file reader, so every layer may use it. A case is found from the current directory upwards by its
``case.yaml``, and only the edge (the CLI, ``idsp.Case.open()``) asks for that.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from idsp.defaults import APPROVAL_VALID_DAYS, APPROVAL_VALID_DAYS_MAX
from idsp.errors import CaseError
from idsp.files import load_yaml

CASE_FILE = "case.yaml"
SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,62}[a-z0-9]$")
# Zaaknummer: inspectorate code, year, sequence number, e.g. ILT-2026-004512.
ZAAKNUMMER_RE = re.compile(r"^[A-Z]{2,5}-\d{4}-\d{3,8}$")
INSPECTORATES = ("ILT", "NVWA", "NLA", "IGJ", "RDI", "other")
CASE_TYPES = ("generic", "ce_markering")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Person(_Frozen):
    name: str
    username: str | None = None
    email: str | None = None
    role: str = "member"


class LegalRef(_Frozen):
    """A legal basis (grondslag): act, article and a link to the official text."""

    act: str
    article: str
    url: str | None = None


class Dataset(_Frozen):
    name: str
    path: str
    dvc: bool = True
    personal_data: bool = False
    synthetic: bool = True
    legal_basis: LegalRef | None = None
    retention: str = Field("P5Y", description="ISO 8601 duration, e.g. P5Y")
    pseudonymisation_domain: str | None = None
    suite: str | None = Field(None, description="name of its GX suite in gx/")
    description: str = ""

    @property
    def official(self) -> bool:
        """A run on this dataset counts (and needs an approval): real or personal data."""
        return self.personal_data or not self.synthetic


class Profile(_Frozen):
    """What drives the checklist: the answers of the case profile."""

    personal_data: bool = False
    risk_profiling: Literal["none", "companies", "natural_persons"] = "none"
    ai_act_risk: Literal["not_ai", "minimal", "limited", "high", "prohibited", "unknown"] = "unknown"
    automated_decision: bool = False
    special_categories: bool = False
    dpia_prescan: dict[str, bool] = Field(default_factory=dict)


class Policy(_Frozen):
    approval_binds: tuple[str, ...] = ("checklist", "code", "data", "params")
    approval_valid_days: int = Field(APPROVAL_VALID_DAYS, ge=1, le=APPROVAL_VALID_DAYS_MAX)


class CaseSpec(_Frozen):
    schema_version: int = 1
    id: str
    title: str
    zaaknummer: str
    inspectorates: tuple[str, ...]
    case_type: str = "generic"
    template_version: str | None = None
    created: date | None = None
    owners: tuple[Person, ...] = ()
    members: tuple[Person, ...] = ()
    profile: Profile = Field(default_factory=Profile)
    legal_basis: tuple[LegalRef, ...] = ()
    purpose: str = Field("", description="doelbinding: what the data may be used for")
    datasets: tuple[Dataset, ...] = ()
    policy: Policy = Field(default_factory=Policy)

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not SLUG_RE.match(v):
            raise ValueError("lower-case letters, digits and dashes, 3-64 long, starting with a letter")
        return v

    @field_validator("zaaknummer")
    @classmethod
    def _zaaknummer(cls, v: str) -> str:
        if not ZAAKNUMMER_RE.match(v):
            raise ValueError("the form CODE-YYYY-NNNNNN, e.g. ILT-2026-004512")
        return v

    @field_validator("inspectorates")
    @classmethod
    def _inspectorates(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [x for x in v if x not in INSPECTORATES]
        if bad or not v:
            raise ValueError(f"one or more of {', '.join(INSPECTORATES)}")
        return v

    @field_validator("case_type")
    @classmethod
    def _case_type(cls, v: str) -> str:
        if v not in CASE_TYPES:
            raise ValueError(f"one of {', '.join(CASE_TYPES)}")
        return v


def parse_case_file(path: Path) -> CaseSpec:
    """Read (bounded: ``idsp.files.load_yaml``) and validate one case.yaml; errors name the
    file and the field."""
    raw = load_yaml(path, what="case file", kind="case", error=CaseError, fix="Correct case.yaml") or {}
    try:
        return CaseSpec.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"`{'.'.join(str(p) for p in e['loc'])}` = {e.get('input')!r}: "
            + e["msg"].removeprefix("Value error, ")
            for e in exc.errors()
        ]
        raise CaseError(
            "invalid case file: " + "; ".join(problems),
            where=str(path),
            fix="Correct the field in case.yaml",
        ) from None


def find_case_root(start: str | Path | None = None) -> Path:
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CASE_FILE).is_file():
            return folder
    raise CaseError(
        "no case project here: no case.yaml in this folder or any folder above it",
        where=str(here),
        fix="cd into a case project, or create one with `idsp case new NAME`",
    )


class CaseFile:
    """An opened case project: its folder and its validated ``case.yaml``."""

    def __init__(self, root: Path, spec: CaseSpec):
        self.root = root
        self.spec = spec

    @classmethod
    def open(cls, path: str | Path | None = None) -> Self:
        root = find_case_root(path)
        return cls(root, parse_case_file(root / CASE_FILE))

    @property
    def id(self) -> str:
        return self.spec.id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.id!r}, root={str(self.root)!r})"

    def dataset(self, name: str) -> Dataset:
        for ds in self.spec.datasets:
            if ds.name == name:
                return ds
        known = ", ".join(d.name for d in self.spec.datasets) or "none"
        raise CaseError(
            f"dataset {name!r} is not in the data catalogue (known: {known})",
            where=str(self.root / CASE_FILE),
            fix="Add it under `datasets:` in case.yaml",
        )

    def dataset_path(self, name: str) -> Path:
        return self.root / self.dataset(name).path
