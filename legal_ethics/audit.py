"""The platform audit log: append-only JSON lines, each entry chained to the one before.

Rule: entries are only ever appended, under an exclusive file lock, and fsynced before the
lock is released. Each entry carries ``seq`` (1, 2, ...), ``prev`` (the previous entry's
``hash``) and ``hash`` = sha256 of the canonical JSON of the entry without ``hash``. A head
file (``<log>.head``) holds the last seq and hash, so cutting entries off the end is
detected too. ``verify`` recomputes the whole chain and reports every break in plain words;
it never repairs anything.

Events written by IDSP: checklist.initialised, answered, submitted, approved, rejected,
revoked, gate.checked, run.started, run.refused, reviewer.registered, reviewer.removed.
"""

from __future__ import annotations

import getpass
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idsp.errors import Refused, UserError
from idsp.files import atomic_write

from legal_ethics.canonical import canonical_json, sha256_hex
from legal_ethics.storage import locked

if TYPE_CHECKING:  # pragma: no cover
    from idsp.config import PlatformConfig

GENESIS = "0" * 64
AUDIT_TAG = "idsp.audit.entry"  # the tag on MLflow runs that records their run.started entry


def _config(config: PlatformConfig | None = None):
    if config is not None:
        return config
    from idsp.config import load_config

    return load_config()


def log_path(config: PlatformConfig | None = None) -> Path:
    return _config(config).path("audit_log")


def _head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def entry_hash(entry: dict[str, Any]) -> str:
    return sha256_hex(canonical_json({k: v for k, v in entry.items() if k != "hash"}))


def _last_line(path: Path) -> str | None:
    if not path.exists() or path.stat().st_size == 0:
        return None
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        pos = fh.tell()
        buf = b""
        while pos > 0:
            step = min(4096, pos)
            pos -= step
            fh.seek(pos)
            buf = fh.read(step) + buf
            lines = buf.rstrip(b"\n").split(b"\n")
            if len(lines) > 1 or pos == 0:
                return lines[-1].decode("utf-8")
    return None


def append(
    event: str, *, actor: str, case_id: str | None = None, config: PlatformConfig | None = None, **data: Any
) -> dict[str, Any]:
    """Append one event and return the entry as written (with its seq and hash)."""
    path = log_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path.with_name(path.name + ".lock")):
        last = _last_line(path)
        if last is None:
            seq, prev = 1, GENESIS
        else:
            try:
                previous = json.loads(last)
                seq, prev = int(previous["seq"]) + 1, previous["hash"]
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                # Never chain onto a damaged entry: that would hide the damage.
                raise Refused(
                    "the audit log ends in a damaged entry, so nothing can be appended",
                    where=str(path),
                    fix="Run `idsp ethics audit verify`; the platform admin restores the log from backup",
                ) from None
        entry: dict[str, Any] = {
            "seq": seq,
            "ts": datetime.now(UTC).isoformat(timespec="microseconds"),
            "event": event,
            "actor": actor,
            "os_user": getpass.getuser(),
            "case_id": case_id,
            "data": json.loads(json.dumps(data, default=str)),
            "prev": prev,
        }
        entry["hash"] = entry_hash(entry)
        line = json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o660)
        except OSError as exc:
            raise _unreadable(path, exc) from None
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)
        atomic_write(_head_path(path), json.dumps({"seq": seq, "hash": entry["hash"]}) + "\n")
    return entry


def entries(config: PlatformConfig | None = None, *, path: Path | None = None) -> Iterator[dict[str, Any]]:
    """Every entry as stored; unreadable lines are skipped here (``verify`` reports them)."""
    path = path or log_path(config)
    if not path.exists():
        return
    try:
        fh = open(path, encoding="utf-8")
    except OSError as exc:
        raise _unreadable(path, exc) from None
    with fh:
        for line in fh:
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue


def _unreadable(path: Path, exc: OSError) -> UserError:
    return UserError(
        f"cannot open the audit log ({exc.strerror})", where=str(path),
        fix="The platform admin gives the IDSP users' group read and append access (see docs/ethics.md)",
    )


@dataclass(frozen=True)
class AuditReport:
    path: Path
    entries: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "entries": self.entries, "ok": self.ok, "problems": self.problems}


def verify(config: PlatformConfig | None = None, *, path: Path | None = None) -> AuditReport:
    """Recompute the chain; name each edited, inserted, deleted, reordered or cut entry."""
    path = path or log_path(config)
    problems: list[str] = []
    count = 0
    prev_hash, prev_seq = GENESIS, 0
    if path.exists():
        try:
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().split("\n")
        except OSError as exc:
            raise _unreadable(path, exc) from None
        if lines and lines[-1] == "":
            lines.pop()
        for lineno, line in enumerate(lines, start=1):
            try:
                entry = json.loads(line)
                seq, stored = int(entry["seq"]), entry["hash"]
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                problems.append(f"line {lineno} is not a readable audit entry (edited or corrupted)")
                continue
            count += 1
            if entry_hash(entry) != stored:
                problems.append(
                    f"line {lineno} (seq {seq}, {entry.get('event')}) was edited: its content "
                    "no longer matches its hash"
                )
            if seq != prev_seq + 1:
                if seq <= prev_seq:
                    problems.append(f"line {lineno}: seq {seq} comes after seq {prev_seq} (entries reordered or inserted)")
                else:
                    problems.append(
                        f"line {lineno}: seq jumps from {prev_seq} to {seq} "
                        f"({seq - prev_seq - 1} entr{'y' if seq - prev_seq == 2 else 'ies'} deleted)"
                    )
            elif entry.get("prev") != prev_hash:
                problems.append(
                    f"line {lineno} (seq {seq}) does not chain to the entry before it "
                    "(an entry before it was edited, replaced or reordered)"
                )
            prev_hash, prev_seq = stored, seq
    head = _head_path(path)
    if head.exists():
        try:
            mark = json.loads(head.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            problems.append(f"the head file {head} is unreadable")
        else:
            if int(mark.get("seq", 0)) != prev_seq or mark.get("hash") != prev_hash:
                problems.append(
                    f"the log ends at seq {prev_seq} but the head file records seq {mark.get('seq')}: "
                    "entries were cut off the end or the last entry was replaced"
                )
    elif count:
        problems.append(f"the head file {head} is missing, so a cut-off end cannot be ruled out")
    return AuditReport(path=path, entries=count, problems=problems)


def check_anchors(anchors: dict[str, str | None], config: PlatformConfig | None = None, *, path: Path | None = None,
                  tracking_uri: str | None = None) -> list[str]:
    """Compare the log with what the tracking server recorded of it, both ways.

    ``anchors`` maps each run id on the server to its ``idsp.audit.entry`` tag
    ("<seq>:<hash>" of its run.started entry) or None. A chain rewritten consistently
    (every hash recomputed, head file too) still verifies on its own, but not against
    hashes the server recorded before the rewrite. And every run.started entry of a run on
    this server (``tracking_uri``) must find its run there with the same tag: a removed or
    changed tag is named too."""
    by_seq = {}
    started = []
    for entry in entries(config, path=path):
        try:
            by_seq[int(entry["seq"])] = entry
        except (KeyError, TypeError, ValueError):
            continue
        if entry.get("event") == "run.started":
            started.append(entry)
    problems: list[str] = []
    for run_id, tag in sorted(anchors.items(), key=lambda kv: str(kv[1])):
        if tag is None:
            continue
        seq_text, _, digest = tag.partition(":")
        try:
            seq = int(seq_text)
        except ValueError:
            problems.append(f"MLflow run {run_id} has a malformed {AUDIT_TAG} tag {tag[:40]!r}")
            continue
        recorded = by_seq.get(seq)
        if recorded is None:
            problems.append(f"MLflow run {run_id} recorded audit entry {seq}, which the log no longer has "
                            "(entries removed, or the log replaced)")
        elif recorded.get("hash") != digest:
            problems.append(f"the audit log was rewritten at or before entry {seq}: MLflow run {run_id} recorded "
                            f"its hash as {digest[:12]}…, the log now has {str(recorded.get('hash'))[:12]}…")
        elif recorded.get("event") != "run.started" or (recorded.get("data") or {}).get("run_id") != run_id:
            problems.append(f"audit entry {seq} is not the start of MLflow run {run_id}, as the run recorded")
    for entry in started:
        data = entry.get("data") or {}
        started_run = data.get("run_id")
        if tracking_uri is not None and data.get("tracking_uri") not in (None, tracking_uri):
            continue  # a run on another tracking server
        if started_run not in anchors:
            problems.append(f"audit entry {entry['seq']} started MLflow run {started_run}, which the tracking server "
                            "no longer has")
        elif anchors[started_run] != f"{entry['seq']}:{entry['hash']}":
            problems.append(f"MLflow run {started_run} no longer carries its audit entry {entry['seq']} "
                            f"(tag {AUDIT_TAG} removed or changed)")
    return problems

