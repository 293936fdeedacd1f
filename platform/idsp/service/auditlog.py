"""The service's own audit log: hash-chained by :mod:`legal_ethics.audit`, written only here.

Rule: the service creates the log once, with a first entry (``log.created``), and from then
on a log that is not there is MISSING, never "intact: 0 entries", and nothing is appended to
it (a new chain would hide the deletion). Users may append only the event types in
``USER_EVENTS``; the actor of every entry is the hub user the service authenticated.
Appends and checks run one at a time on one thread, so the chain never forks.

A check reads the whole chain only when the log changed in a way the service did not make
itself: the last verdict is kept with the log's identity (inode, size, mtime and ctime in
nanoseconds, and the head file's bytes); the service's own append moves that identity on by
one entry. Any other write changes the ctime, which no user call can set back, so it is
seen at the next check. A page view thus costs a ``stat``, not a pass over every entry.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from idsp.config import Paths, PlatformConfig
from idsp.errors import Refused
from idsp.service import SERVICE_NAME
from idsp.service.link import USER_EVENTS
from legal_ethics import audit

__all__ = ["RESERVED_KEYS", "SERVICE_ACTOR", "USER_EVENTS", "AuditLog", "LogMissing"]
# Hub user names never contain ':', so no user can be this actor.
SERVICE_ACTOR = f"service:{SERVICE_NAME}"
RESERVED_KEYS = frozenset(
    {"event", "actor", "case_id", "config", "os_user", "recorded_by", "seq", "ts", "prev", "hash"}
)


class LogMissing(Refused):
    """The service's audit log was deleted after the service created it."""


def _at(log: Path) -> PlatformConfig:
    """A platform config that only places the log: built here, never read from a file or
    the environment (the service follows no ``platform.yaml``)."""
    return PlatformConfig(paths=Paths(home=log.parent, audit_log=log))


def _identity(path: Path, head: Path) -> tuple:
    info = path.stat()
    try:
        head_bytes = head.read_bytes()[:4096]
    except FileNotFoundError:
        head_bytes = b""
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns, head_bytes)


class AuditLog:
    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / "audit.jsonl"
        self.head = folder / "audit.jsonl.head"
        # Written once, right after the first entry: from then on the log must exist.
        self.marker = audit.marker_path(self.path)
        self._config = _at(self.path)
        self._verdict: tuple[tuple, dict[str, Any]] | None = None  # (identity, intact report)

    def open(self) -> str:
        """Create the log on first start; returns what it found ("created", "present", "missing")."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        if self.path.exists():
            self.marker.touch(mode=0o600, exist_ok=True)
            return "present"
        if self.marker.exists() or self.head.exists():
            return "missing"
        # record(), not append(): the service writes its own chain, it never asks itself
        audit.record("log.created", actor=SERVICE_ACTOR, config=self._config)
        self.marker.touch(mode=0o600, exist_ok=True)
        return "created"

    def append(
        self, event: str, *, actor: str, case_id: str | None, data: dict[str, Any]
    ) -> dict[str, Any]:
        if not self.path.exists():
            raise LogMissing(
                "the platform's audit log is missing (deleted after the service created it), so nothing is recorded",
                fix="The platform admin restores it from backup; `GET /services/idsp/api/audit/verify` reports it",
            )
        known = self._verdict is not None and self._verdict[0] == _identity(self.path, self.head)
        entry = audit.record(event, actor=actor, case_id=case_id, config=self._config, **data)
        if known and self._verdict is not None:  # the chain was intact and only we wrote to it
            report = dict(self._verdict[1], entries=self._verdict[1]["entries"] + 1)
            report["head"] = {"seq": entry["seq"], "hash": entry["hash"]}
            self._verdict = (_identity(self.path, self.head), report)
        else:
            self._verdict = None
        return entry

    def verify(self) -> dict[str, Any]:
        """``{"status": "intact" | "broken" | "missing", "entries": n, "problems": [...]}``."""
        if not self.path.exists():
            return {
                "status": "missing",
                "entries": 0,
                "problems": [
                    "the audit log is missing: the service created it, so it was deleted or moved"
                ],
            }
        identity = _identity(self.path, self.head)
        if self._verdict is not None and self._verdict[0] == identity:
            return {**self._verdict[1], "problems": []}
        report = audit.verify(path=self.path)
        problems = list(report.problems)
        if report.entries == 0 and not problems:
            # the service's first entry is always there: an empty log was emptied
            problems.append(
                "the audit log is empty, but the service always writes a first entry: entries were removed"
            )
        out: dict[str, Any] = {
            "status": "broken" if problems else "intact",
            "entries": report.entries,
            "problems": problems,
        }
        if not problems:  # intact: the head file names the last entry, for anchoring elsewhere
            head = json.loads(self.head.read_text(encoding="utf-8"))
            out["head"] = {"seq": head["seq"], "hash": head["hash"]}
            self._verdict = (identity, out)
        else:
            self._verdict = None
        return out
