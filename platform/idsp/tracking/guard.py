"""The identifier guard: nothing that holds a raw identifier (BSN, IBAN, e-mail, phone, KvK) reaches MLflow.

Rule: every name, value, text and file a run logs passes ``check_text`` or ``check_file``
first; a finding refuses the whole call (``PIIFound``) and names what to do; failure
messages that must be stored anyway are ``scrub``bed to their masked form first. The guard
decides nothing itself: texts are judged by ``idsp.privacy.check`` and files by
``idsp.scanning.scan_path``, the same calls the privacy scan and the pre-commit hook make,
so what the hook lets into git the guard lets into MLflow and the other way round, with one
exception: a line marked ``idsp: allow-pii`` (generated test fixtures, for git) is checked
all the same, since fixtures have no business in MLflow.
"""

from __future__ import annotations

from pathlib import Path

from idsp.errors import PIIFound
from idsp.privacy import Finding
from idsp.privacy.check import find_identifiers, kvk_named, scrub
from idsp.scanning import TEXT_COLUMN, scan_path

__all__ = ["check_file", "check_text", "find_identifiers", "kvk_named", "scrub"]


def _refuse(found: list[tuple[str, str]], what: str) -> None:
    if found:
        kinds = sorted({k for k, _ in found})
        raise PIIFound(
            f"refused to log {what}: it contains {', '.join(kinds)} ({', '.join(m for _, m in found[:3])})",
            fix="Raw identifiers never go to MLflow. Pseudonymise them (`idsp data pseudonymise`) "
            "or leave them out of names, values and files",
        )


def check_text(text: str, what: str, *, kvk_context: bool = False) -> None:
    """Refuse ``text`` (described as ``what`` in the message) if it holds a raw identifier."""
    _refuse(find_identifiers(text, kvk_context=kvk_context), what)


def check_file(path: Path, what: str | None = None) -> None:
    """Refuse a file (or every file below a folder) that holds raw identifiers, or is too
    large to check (``TooLargeToCheck``)."""
    path = Path(path)
    files = [p for p in sorted(path.rglob("*")) if p.is_file()] if path.is_dir() else [path]
    for file in files:
        label = what or f"artefact {file.name}"
        if path.is_dir():
            label = f"artefact {file.relative_to(path.parent)}"
        check_text(file.name, f"{label} (its file name)")
        result = scan_path(file, honour_allow_mark=False)  # the mark is for fixtures in git only
        if result.findings:
            where = ", ".join(_where(f) for f in result.findings[:5])
            raise PIIFound(
                f"refused to log {label}: it holds raw identifiers ({where})",
                fix="Raw identifiers never go to MLflow. Pseudonymise them first (`idsp data pseudonymise`), "
                "or log a summary without them",
            )


def _where(finding: Finding) -> str:
    """'bsn in column 'x'' for a table; 'email on line 3: j***@v***' for a text file."""
    if finding.column == TEXT_COLUMN:
        return f"{finding.kind} on {', '.join(finding.examples)}"
    return f"{finding.kind} in column {finding.column!r}"
