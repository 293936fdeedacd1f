"""Scanning one file for raw identifiers: tables per column, every other text file per line.

Rule: one answer per file for every caller — ``idsp data scan`` (and so the case's
pre-commit hook) and the MLflow guard both call ``scan_path``. Tables (.csv .tsv .xlsx
.xlsm .parquet .pq) go through the column scan, column names included, and every sheet of
a workbook; a table over ``MAX_TABLE_BYTES`` on disk is refused (``TooLargeToCheck``), as
is a text file over ``MAX_TEXT_BYTES``: never skipped. Any other file is text when its
first 8 KiB hold no NUL byte, and is checked line by line by the one text check
(``idsp.privacy.check``). Binary files are skipped and say so. Findings carry masked
examples only. For git, a line can opt out with the comment ``idsp: allow-pii`` (for test
fixtures of generated, non-real numbers); the MLflow guard does not honour it
(``honour_allow_mark=False``), and tables cannot opt out.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from idsp.data import EXCEL_SUFFIXES, PARQUET_SUFFIXES, excel_sheets, read_table
from idsp.errors import DataError
from idsp.privacy import Finding, TooLargeToCheck, find_identifiers, read_text, scan, scrub

ALLOW_MARK = "idsp: allow-pii"
# .txt is also a CSV suffix for reading tables, but a .txt in a case is notes or logs far
# more often than data: as text it is checked line by line and cannot fail to parse.
TABLE_SUFFIXES = {".csv", ".tsv"} | EXCEL_SUFFIXES | PARQUET_SUFFIXES
# A table is read whole into memory (as text, several times its size on disk) before the
# column scan: 512 MiB on disk is some GiB in a notebook kernel and minutes of scanning.
# Data that large belongs in DVC, not in git or MLflow.
MAX_TABLE_BYTES = 512 * 1024 * 1024
EXAMPLES = 3
TEXT_COLUMN = "text"  # the column name of findings in a text file


@dataclass
class FileScan:
    path: Path
    rows: int = 0
    findings: list[Finding] = field(default_factory=list)
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "rows": self.rows,
            "skipped": self.skipped,
            "findings": [f.as_dict() for f in self.findings],
        }


def scan_path(path: str | Path, *, min_share: float = 0.5, honour_allow_mark: bool = True) -> FileScan:
    """The identifiers in one file; ``DataError`` if it is missing or an unreadable table,
    ``TooLargeToCheck`` if it is too large to check. ``honour_allow_mark=False`` (the MLflow
    guard) checks lines marked ``idsp: allow-pii`` too."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", where=str(path))
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        _refuse_large_table(path)
        if suffix in EXCEL_SUFFIXES:
            return _scan_workbook(path, min_share)
        frame = read_table(path) if suffix in PARQUET_SUFFIXES else read_table(path, infer=False)
        return FileScan(path, len(frame), scan(frame, min_share=min_share))
    return _scan_text(path, honour_allow_mark)


def _refuse_large_table(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_TABLE_BYTES:
        raise TooLargeToCheck(
            f"a {size / 2**20:.1f} MiB table is more than the {MAX_TABLE_BYTES // 2**20} MiB the identifier "
            "check reads, so it cannot be shown free of raw identifiers",
            where=str(path),
            fix="Keep large data out of git and MLflow: track it with DVC (`dvc add`), "
            "or commit and log a summary or a pseudonymised extract instead",
        )


def _scan_workbook(path: Path, min_share: float) -> FileScan:
    """Every sheet; with more than one, findings name the sheet (``Blad2!bsn``)."""
    sheets = excel_sheets(path)
    rows, findings = 0, []
    for sheet in sheets:
        frame = read_table(path, infer=False, sheet=sheet)
        rows += len(frame)
        found = scan(frame, min_share=min_share)
        label = scrub(sheet, limit=200)
        if len(sheets) > 1:
            found = [replace(f, column=f"{label}!{f.column}") for f in found]
        findings += [Finding(f"{label}!", kind, 1, 0.0, (f"sheet name: {masked}",), True)
                     for kind, masked in find_identifiers(sheet)] + found
    return FileScan(path, rows, findings)


def _scan_text(path: Path, honour_allow_mark: bool = True) -> FileScan:
    text = read_text(path)
    if text is None:
        return FileScan(path, skipped="binary")
    per_kind: dict[str, list] = {}
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if honour_allow_mark and ALLOW_MARK in line:
            continue
        for kind, masked in find_identifiers(line):
            slot = per_kind.setdefault(kind, [0, []])
            slot[0] += 1
            if len(slot[1]) < EXAMPLES:
                slot[1].append(f"line {number}: {masked}")
    findings = [
        Finding(TEXT_COLUMN, kind, count, round(count / max(len(lines), 1), 4), tuple(ex), True)
        for kind, (count, ex) in per_kind.items()
    ]
    return FileScan(path, len(lines), findings)
