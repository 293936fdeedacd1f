"""``idsp.Case``: a case project as a data scientist works with it — load, validate, run.

Rule: this module is the facade above the library, not part of it. The case file itself
(``case.yaml``, its datasets, finding it from a folder) is ``idsp.case_file``, low in the
layers, and every library function takes such a case as an argument; only here, at the
edge, does ``Case.open()`` look for the case from the current directory, and only here do
the case, data, quality and tracking meet. Lower layers never import this module.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from idsp import quality, tracking
from idsp.case_file import (
    CASE_FILE,
    CASE_TYPES,
    INSPECTORATES,
    SLUG_RE,
    ZAAKNUMMER_RE,
    CaseFile,
    CaseSpec,
    Dataset,
    LegalRef,
    Person,
    Policy,
    Profile,
    find_case_root,
    parse_case_file,
)
from idsp.data import read_table
from legal_ethics.schema import Purpose

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from idsp.config import PlatformConfig

__all__ = [
    "CASE_FILE", "CASE_TYPES", "INSPECTORATES", "SLUG_RE", "ZAAKNUMMER_RE", "Case", "CaseFile", "CaseSpec",
    "Dataset", "LegalRef", "Person", "Policy", "Profile", "find_case_root", "parse_case_file",
]  # fmt: skip


class Case(CaseFile):
    """An opened case project with the data scientist's verbs: ``load``, ``validate``, ``run``."""

    def load(self, name: str, **overrides: Any) -> pd.DataFrame:
        """Read a catalogued dataset with the Dutch-aware reader."""
        return read_table(self.dataset_path(name), **overrides)

    def validate(
        self,
        data: Any,
        suite: str | None = None,
        *,
        engine: str | None = None,
        fail_fast: bool = True,
        personal_columns: Sequence[str] | None = None,
        output_dir: str | os.PathLike | None = None,
        save: bool = True,
    ) -> quality.QualityResult:
        """Validate a DataFrame, a dataset name or a path against a GX suite of this case."""
        return quality.validate(
            data, suite, case=self, engine=engine, fail_fast=fail_fast,
            personal_columns=personal_columns, output_dir=output_dir, save=save,
        )  # fmt: skip

    def run(
        self,
        name: str,
        datasets: Sequence[str] = (),
        *,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        experiment: str | None = None,
        config: PlatformConfig | None = None,
        actor: str | None = None,
        purpose: Purpose = "use",
    ) -> tracking.TrackedRun:
        """A gated, fully tagged MLflow run (context manager); see ``idsp.tracking``."""
        return tracking.run(
            self, name, list(datasets), params=params, tags=tags, experiment=experiment,
            config=config, actor=actor, purpose=purpose,
        )  # fmt: skip
