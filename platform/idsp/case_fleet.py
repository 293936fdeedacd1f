"""The fleet of case projects: which lag behind the newest template, and bringing them along.

Rule: looking never changes a case, and one broken case never hides the others: a missing
folder, an invalid case.yaml, a failing checklist module or a dead tracking server becomes
a note on that row, not an error. ``update_fleet`` updates each lagging case on its own
and reports the ones that need a person.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idsp.case import CASE_FILE, Case, parse_case_file
from idsp.case_index import read_index
from idsp.case_projects import Progress, UpdateResult, case_template_version, update_case
from idsp.case_template import newest_version
from idsp.errors import CaseError, IdspError, UserError, tracking_login_refused

if TYPE_CHECKING:  # pragma: no cover
    from idsp.config import PlatformConfig


def _quiet(_: str) -> None:
    pass


@dataclass
class CaseStatus:
    id: str
    path: str
    template_version: str | None
    newest_version: str
    behind: bool
    checklist: str
    last_run: dict[str, Any] | None
    last_run_note: str
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_cases(root: Path, max_depth: int = 3) -> list[Path]:
    """Case projects at or below ``root`` (a folder with case.yaml), not looking inside them."""
    found: list[Path] = []

    def walk(folder: Path, depth: int) -> None:
        if (folder / CASE_FILE).is_file():
            found.append(folder)
            return
        if depth >= max_depth:
            return
        try:
            children = sorted(
                p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
            )
        except OSError:
            return
        for child in children:
            walk(child, depth + 1)

    walk(Path(root).expanduser().resolve(), 0)
    return found


def fleet_status(
    root: Path | None = None,
    *,
    cfg: PlatformConfig | None = None,
    runs: bool = True,
    template: Path | None = None,
) -> list[CaseStatus]:
    """Every case (in ``root`` if given, else in the platform's index) against the newest template."""
    newest = newest_version(template)
    if root is not None:
        if not Path(root).is_dir():
            raise UserError(
                "no such folder", where=str(root), fix="Give a folder that holds case projects"
            )
        folders = [(None, p) for p in find_cases(Path(root))]
    else:
        folders = [(entry.get("id"), Path(str(entry.get("path", "")))) for entry in read_index(cfg)]
    last_run = _LastRuns(cfg) if runs else None
    out = []
    for known_id, folder in folders:
        out.append(_one_status(known_id, folder, newest, runs, last_run, cfg))
    return out


def _one_status(
    known_id: str | None,
    folder: Path,
    newest: str,
    runs: bool,
    last_run: _LastRuns | None,
    cfg: PlatformConfig | None,
) -> CaseStatus:
    from packaging.version import Version

    status = CaseStatus(
        id=str(known_id or folder.name),
        path=str(folder),
        template_version=None,
        newest_version=newest,
        behind=False,
        checklist="none",
        last_run=None,
        last_run_note="not asked (--no-runs)" if not runs else "",
    )
    if not (folder / CASE_FILE).is_file():
        status.problem = "case folder missing (no case.yaml)"
        return status
    try:
        case = Case(folder, parse_case_file(folder / CASE_FILE))
    except CaseError as exc:
        status.problem = exc.message
        return status
    status.id = case.id
    try:
        status.template_version = case_template_version(folder)
    except CaseError as exc:
        status.problem = exc.message
    if status.template_version:
        with contextlib.suppress(ValueError):
            status.behind = Version(status.template_version) < Version(newest)
    status.checklist = _checklist_state(case, cfg)
    if last_run is not None:
        status.last_run, status.last_run_note = last_run(case)
    return status


def _checklist_state(case: Case, config: PlatformConfig | None) -> str:
    from legal_ethics import status

    try:
        return status(case, config=config)
    except IdspError as exc:
        return f"error: {exc.what}"
    except Exception as exc:  # one broken case must not hide the rest of the fleet
        return f"error: {type(exc).__name__}: {exc}"


class _LastRuns:
    """Each case's last tracked run.

    Once the tracking server fails to answer, the remaining cases are not asked again:
    each question would wait for the same retries and time-outs.
    """

    def __init__(self, config: PlatformConfig | None = None) -> None:
        self.config = config
        self.note = ""
        self.function: Callable[..., dict[str, Any] | None] | None = None
        try:
            from idsp.tracking import last_run
        except ImportError as exc:
            self.note = f"tracking not available (cannot import idsp.tracking: {exc})"
            return
        self.function = last_run

    def __call__(self, case: Case) -> tuple[dict[str, Any] | None, str]:
        if self.function is None:
            return None, self.note
        try:
            run = self.function(case, config=self.config)
        except Exception as exc:  # a dead tracking server must not break the overview
            self.function = None
            refused = tracking_login_refused(exc)
            if refused is not None:  # it answered: "not reachable" would send people astray
                uri = self.config.tracking.client_uri() if self.config else "the tracking server"
                self.note = f"unknown: {refused.what} ({uri}). {refused.fix}."
                return None, self.note
            detail = exc.what if isinstance(exc, IdspError) else f"{type(exc).__name__}: {exc}"
            self.note = f"unknown: tracking server not reachable ({detail})"
            return None, self.note
        if run is None:
            return None, "no runs yet"
        return dict(run), ""


@dataclass
class FleetUpdate:
    """One case of ``update_fleet``: its result, or why it was not updated."""

    id: str
    path: str
    result: UpdateResult | None = None
    refused: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "result": self.result.as_dict() if self.result else None,
            "refused": self.refused,
        }


def update_fleet(
    root: Path | None = None,
    *,
    cfg: PlatformConfig | None = None,
    template: Path | None = None,
    progress: Progress = _quiet,
) -> list[FleetUpdate]:
    """Update every case that is behind (in ``root``, else in the index); one failure stops none."""
    out = []
    for status in fleet_status(root, cfg=cfg, runs=False, template=template):
        if not status.behind:
            continue
        progress(f"updating {status.id}")
        item = FleetUpdate(status.id, status.path)
        try:
            item.result = update_case(Path(status.path), cfg=cfg, root=template)
        except IdspError as exc:
            item.refused = exc.message
        out.append(item)
    return out
