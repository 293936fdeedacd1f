"""The data-quality part of the run gate: does the newest stored quality result show the data?

Rule: an official run needs, for every dataset whose case.yaml names a suite, a stored
quality result that passed, was not edited after it was written (its ``.sha256`` holds)
and was made on the file as it is now. This module reads the evidence and names what is
missing; it decides nothing on its own and never writes. ``gate.check`` counts the
problems for official runs, and tracking tags each run with the same evidence, so what
``idsp ethics verify`` says and what ``case.run`` does come from one reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idsp import quality

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile


@dataclass(frozen=True)
class QualityEvidence:
    """What the newest stored quality result of one dataset shows."""

    dataset: str
    suite: str | None  # the suite case.yaml names for the dataset, if any
    result: dict[str, Any] | None = None  # ``quality.latest_result``; None when there is none
    data_match: bool = False  # the result was made on the file as it is now
    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def state(self) -> str:
        """``none``, or ``passed|failed <passed>/<evaluated> suite=<suite>``."""
        if self.result is None:
            return "none"
        r = self.result
        return f"{'passed' if r['success'] else 'failed'} {r['passed']}/{r['evaluated']} suite={r['suite']}"

    @property
    def files(self) -> tuple[Path, ...]:
        """The evidence files a run keeps beside it: the result JSON and its HTML report."""
        if self.result is None:
            return ()
        html = Path(self.result["html_path"])
        return (Path(self.result["json_path"]), *((html,) if html.is_file() else ()))


def read(case: CaseFile, name: str) -> QualityEvidence:
    """The quality evidence of dataset ``name`` of ``case``, with its problems named."""
    ds = case.dataset(name)
    found = quality.latest_result(case, name)
    if found is None:
        problems = (
            (f"dataset {name} has no quality result for suite {ds.suite}; run `idsp quality validate {name}`",)
            if ds.suite
            else ()
        )
        return QualityEvidence(name, ds.suite, problems=problems)
    path = case.root / ds.path
    current = quality.file_sha256(path) if path.is_file() else None
    same_data = current is not None and found.get("data_fingerprint") == current
    problems_list = []
    if not found["sha256_ok"]:
        problems_list.append(
            f"the quality result of dataset {name} was edited after it was written ({found['json_path']})"
        )
    if not found["success"]:
        problems_list.append(f"dataset {name} failed its quality suite {found['suite']} ({found['html_path']})")
    if not same_data:
        problems_list.append(
            f"dataset {name} changed after its last quality validation; run `idsp quality validate {name}`"
        )
    return QualityEvidence(name, ds.suite, found, same_data, tuple(problems_list))


def read_all(case: CaseFile, datasets: Sequence[str]) -> tuple[QualityEvidence, ...]:
    return tuple(read(case, name) for name in datasets)


def problems(evidence: Sequence[QualityEvidence]) -> list[str]:
    return [p for e in evidence for p in e.problems]
