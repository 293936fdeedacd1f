"""Scanning files for raw identifiers: tables per column, other text files per line.

Rule: findings carry masked examples only. A line can opt out with the comment
``idsp: allow-pii`` (for test fixtures of generated, non-real numbers); tables cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from idsp.data import CSV_SUFFIXES, EXCEL_SUFFIXES, PARQUET_SUFFIXES
from idsp.privacy import Finding

ALLOW_MARK = "idsp: allow-pii"
MAX_TEXT_BYTES = 20 * 1024 * 1024


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
    from idsp.data import read_table
    from idsp.errors import DataError

    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", where=str(path))
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES | EXCEL_SUFFIXES | PARQUET_SUFFIXES:
        from idsp.privacy import scan

        frame = read_table(path, infer=False) if suffix not in PARQUET_SUFFIXES else read_table(path)
        return FileScan(path, len(frame), scan(frame, min_share=min_share))
    return _scan_text(path)


def _scan_text(path: Path) -> FileScan:
    from idsp.privacy import find_in_text

    if path.stat().st_size > MAX_TEXT_BYTES:
        return FileScan(path, skipped="larger than 20 MiB")
    raw = path.read_bytes()
    if b"\0" in raw[:8192]:
        return FileScan(path, skipped="binary")
    text = raw.decode("utf-8", errors="replace")
    per_kind: dict[str, list] = {}
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if ALLOW_MARK in line:
            continue
        for kind, masked in find_in_text(line):
            slot = per_kind.setdefault(kind, [0, []])
            slot[0] += 1
            if len(slot[1]) < 3:
                slot[1].append(f"line {number}: {masked}")
    findings = [
        Finding("text", kind, count, round(count / max(len(lines), 1), 4), tuple(ex), True)
        for kind, (count, ex) in per_kind.items()
    ]
    return FileScan(path, len(lines), findings)
