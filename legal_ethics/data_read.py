"""Data read is data bound: the md5 of what is read, compared with what DVC (and the run) bound.

Rule: a dataset is checked at the moment it is read, not only when the gate let the run
start: a file's bytes are hashed as they are read, a folder is hashed as DVC hashes it
(the ``.dir`` md5 of its sorted entry list), and the result must equal the md5 the open
run was gated with, or else DVC's record. A mismatch is ``Refused`` naming the dataset,
both md5s and what to do. This module only reads.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from idsp.errors import Refused

from legal_ethics.canonical import md5_file

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile

_DVC_SKIP = {".dvc", ".git", "__pycache__"}


def dir_md5(folder: Path) -> str:
    """DVC 3's md5 of a folder: md5 of the JSON list of {md5, relpath}, sorted by relpath,
    with ``.dir`` appended (dvc_data's ``Tree.digest``); links are followed as DVC does."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = [d for d in dirnames if d not in _DVC_SKIP]
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            entries.append({"md5": md5_file(path), "relpath": rel})
    entries.sort(key=lambda e: e["relpath"])
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode("utf-8"), usedforsecurity=False).hexdigest() + ".dir"


def md5_bytes(raw: bytes) -> str:
    return hashlib.md5(raw, usedforsecurity=False).hexdigest()


def refuse(case: CaseFile, name: str, expected: str, actual: str, *, in_run: str | None) -> Refused:
    when = f"when run {in_run} started" if in_run else "in its DVC record"
    return Refused(
        f"dataset {name} changed: {case.dataset(name).path} has md5 {actual[:12]}… now, {expected[:12]}… "
        f"{'was bound ' if in_run else 'is recorded '}{when}; the data read must be the data bound",
        where=str(Path(case.root) / case.dataset(name).path),
        fix="Restore the file (`dvc checkout`), or `dvc add` it, commit, and have the change approved",
    )


def check_folder(case: CaseFile, name: str, expected: str | None, *, in_run: str | None = None) -> None:
    """Refuse a folder dataset whose content no longer gives the bound ``.dir`` md5."""
    if expected is None:
        return
    path = Path(case.root) / case.dataset(name).path
    actual = dir_md5(path)
    if actual != expected:
        raise refuse(case, name, expected, actual, in_run=in_run)


def check_file(case: CaseFile, name: str, path: Path, expected: str | None, *, in_run: str | None = None) -> None:
    if expected is None:
        return
    actual = md5_file(path)
    if actual != expected:
        raise refuse(case, name, expected, actual, in_run=in_run)
