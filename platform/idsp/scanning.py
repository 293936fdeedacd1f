"""Scanning one file for raw identifiers: tables per column, every other text file per line.

Rule: one answer per file for every caller — ``idsp data scan`` (and so the case's
pre-commit hook) and the MLflow guard both call ``scan_path``. Tables (.csv .tsv .xlsx
.xlsm .parquet .pq) go through the column scan; any other file is text when its first
8 KiB hold no NUL byte, and is checked line by line by the one text check
(``idsp.privacy.check``); a text file over ``MAX_TEXT_BYTES`` is refused
(``TooLargeToCheck``), never skipped. Binary files are skipped and say so. Findings carry
masked examples only. A line can opt out with the comment ``idsp: allow-pii`` (for test
fixtures of generated, non-real numbers); tables cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from idsp.data import EXCEL_SUFFIXES, PARQUET_SUFFIXES, read_table
from idsp.errors import DataError
from idsp.privacy import Finding, find_identifiers, read_text, scan

ALLOW_MARK = "idsp: allow-pii"
# .txt is also a CSV suffix for reading tables, but a .txt in a case is notes or logs far
# more often than data: as text it is checked line by line and cannot fail to parse.
TABLE_SUFFIXES = {".csv", ".tsv"} | EXCEL_SUFFIXES | PARQUET_SUFFIXES
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


def scan_path(path: str | Path, *, min_share: float = 0.5) -> FileScan:
    """The identifiers in one file; ``DataError`` if it is missing or an unreadable table."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", where=str(path))
    suffix = path.suffix.lower()
    if suffix in TABLE_SUFFIXES:
        frame = read_table(path) if suffix in PARQUET_SUFFIXES else read_table(path, infer=False)
        return FileScan(path, len(frame), scan(frame, min_share=min_share))
    return _scan_text(path)


def _scan_text(path: Path) -> FileScan:
    text = read_text(path)
    if text is None:
        return FileScan(path, skipped="binary")
    per_kind: dict[str, list] = {}
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if ALLOW_MARK in line:
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
