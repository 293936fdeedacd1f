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

    def load(self, name: str, *, file: str | None = None, **overrides: Any) -> pd.DataFrame:
        """Read a catalogued dataset with the Dutch-aware reader, checked at read time.

        What is read must be what was bound: for real or personal data, the md5 of the bytes
        read (a folder dataset: its ``.dir`` md5, then ``file`` inside it) must equal the
        md5 the open run was gated with, or DVC's record outside a run; inside a run, such a
        dataset the run was not started on is refused (the gate never saw it). Synthetic,
        non-personal data are read as they are."""
        from idsp.errors import Refused, UserError
        from idsp.files import inside
        from idsp.tracking.run import open_run
        from legal_ethics import bindings, data_read

        run = open_run(self)
        in_run = run.run_id if run is not None else None
        if run is not None and self.dataset(name).official and name not in run.datasets:
            raise Refused(
                f"dataset {name} holds real or personal data, and run {run.name!r} ({in_run}) was started on "
                f"{', '.join(run.datasets) or 'no datasets'}: the gate never checked a run on it",
                fix=f"Name it when the run starts: case.run(..., datasets=[..., {name!r}])",
            )
        bound = (run.decision.bindings.get("data") if run is not None and run.decision is not None else None)
        # Synthetic, non-personal data stay free to explore; real or personal data are checked.
        expected = bindings.expected_md5(self, name, bound) if self.dataset(name).official else None
        path = self.dataset_path(name)
        if path.is_dir():
            data_read.check_folder(self, name, expected, in_run=in_run)
            target = inside(path, file) if file else None
            if target is None:
                raise UserError(f"dataset {name} is a folder", where=str(path),
                                fix="Name the file inside it to read: case.load(name, file='part.csv')")
            return read_table(target, **overrides)

        def verify(actual: str) -> None:
            if expected is not None and actual != expected:
                raise data_read.refuse(self, name, expected, actual, in_run=in_run)

        return read_table(path, verify=verify, **overrides)

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
