"""The platform audit log: append-only JSON lines, each entry chained to the one before.

Rule: entries are only ever appended, under an exclusive file lock, and fsynced before the
lock is released. Each entry carries ``seq`` (1, 2, ...), ``prev`` (the previous entry's
``hash``) and ``hash`` = sha256 of the canonical JSON of the entry without ``hash``. A head
file (``<log>.head``) holds the last seq and hash, so cutting entries off the end is
detected too. ``verify`` recomputes the whole chain and reports every break in plain words;
it never repairs anything.

A creation marker (``<stem>.created``, written with the first entry) and the head file
outlive a deleted log: a log that is gone while either is there is MISSING, never "intact: 0
entries", and nothing is appended to it (a new chain at seq 1 would hide the deletion).

On the hub (a user server), :func:`append` sends the events the platform service accepts
(``answered``, ``submitted``) to the service, which records them with the
actor the hub proved; the local file never sees them. The other events are still written
here, by the user's own process, and marked ``"recorded_by": "process"``: unproved, so
nothing may read them as the service's word. :func:`record` is the chain writer itself (the
service uses it for its own log). Off the hub everything is written here and trusts its one
user.

Events written by IDSP: checklist.initialised, answered, submitted, approved, rejected,
revoked, gate.checked, run.started, run.refused, reviewer.registered, reviewer.removed.
"""

from __future__ import annotations

import json
import os
import pwd
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


def marker_path(path: Path) -> Path:
    """Written once with a log's first entry: from then on the log must be there."""
    return path.with_name(path.stem + ".created")


def _os_user() -> str:
    # The process's real account, not $LOGNAME or $USER, which its user sets at will.
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return f"uid {os.getuid()}"


def _missing(path: Path) -> str | None:
    if path.exists():
        return None
    for left in (marker_path(path), _head_path(path)):
        if left.exists():
            return (f"the audit log is missing: {left.name} shows it was created, so it was deleted or moved "
                    "(nothing recorded yet would leave no such file)")
    return None


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
    """Record one event where it belongs and return the entry (with its seq and hash).

    On the hub an event the service accepts goes to the service, and ``actor`` must be the
    signed-in user (the service refuses another name); every other event is written here
    and marked as recorded by this process."""
    from idsp.service import link

    if not link.on_hub():
        return record(event, actor=actor, case_id=case_id, config=config, **data)
    if event in link.USER_EVENTS:
        return link.hub_service().audit(event, case_id=case_id, actor=actor, **data)
    return record(event, actor=actor, case_id=case_id, config=config, recorded_by="process", **data)


def record(
    event: str, *, actor: str, case_id: str | None = None, config: PlatformConfig | None = None,
    recorded_by: str | None = None, **data: Any,
) -> dict[str, Any]:
    """Append one event to the local chain (``paths.audit_log`` of ``config``)."""
    path = log_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path.with_name(path.name + ".lock")):
        gone = _missing(path)
        if gone:
            raise Refused(gone + ", so nothing is appended (a new chain would hide the deletion)", where=str(path),
                          fix="The platform admin restores the log from backup; `idsp ethics audit verify` reports it")
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
            "os_user": _os_user(),
            "case_id": case_id,
            "data": json.loads(json.dumps(data, default=str)),
            "prev": prev,
        }
        if recorded_by is not None:
            entry["recorded_by"] = recorded_by
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
        if seq == 1:
            marker_path(path).touch(mode=0o640, exist_ok=True)
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


def run_started(run_id: str, config: PlatformConfig | None = None, *, path: Path | None = None,
                events: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """The log's record of an MLflow run's start (its latest ``run.started`` entry), or None.

    Whether a run is official, for which purpose and under which approvals is read here,
    never from the run's tags, which any case member can set. ``events``: the entries of
    another log in order (the platform service's, where its runner records runs)."""
    found = None
    for entry in (events if events is not None else entries(config, path=path)):
        if entry.get("event") == "run.started" and (entry.get("data") or {}).get("run_id") == run_id:
            found = entry
    return found


def official_problems(run_id: str, tags: dict[str, str], record: dict[str, Any] | None, *,
                      purpose: str | None = "use") -> list[str]:
    """Why the log's record does not make run ``run_id`` official (for ``purpose``), and where
    its tags claim more than the record; empty when the log says it is official."""
    if record is None:
        return [f"the audit log has no record of MLflow run {run_id} starting (no run.started entry): it was not "
                "made through a gated `case.run`, so it is not official, whatever its tags say"]
    data, seq = record.get("data") or {}, record.get("seq")
    problems = []
    if not data.get("official") or not data.get("approval_ids"):
        problems.append(f"the audit log records run {run_id} as exploratory (entry {seq}): no approval let it start")
    elif purpose is not None and data.get("purpose") != purpose:
        problems.append(f"the audit log records run {run_id} as made for {data.get('purpose') or 'an unrecorded purpose'}"
                        f" (entry {seq}), not for {purpose}: only a run started with purpose='{purpose}' under an "
                        f"approval for {purpose} can be registered")
    claimed = tags.get("idsp.approval")
    if claimed is not None and claimed != ",".join(data.get("approval_ids") or []) and \
            not (claimed == "none" and not data.get("approval_ids")):
        problems.append(f"run {run_id} claims approval {claimed!r} in its tags, but the audit log recorded "
                        f"{','.join(data.get('approval_ids') or []) or 'none'} (entry {seq}): the tags were edited")
    if tags.get(AUDIT_TAG) not in (None, f"{seq}:{record.get('hash')}"):
        problems.append(f"run {run_id}'s tag {AUDIT_TAG} does not name its audit entry {seq}")
    if tags.get("idsp.official") == "true" and not data.get("official"):
        problems.append(f"run {run_id} is tagged official, but the audit log recorded it as exploratory (entry {seq})")
    return problems


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
    missing: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def status(self) -> str:
        """"missing", "broken", "intact", or "none" (nothing was ever recorded here)."""
        if self.missing:
            return "missing"
        if self.problems:
            return "broken"
        return "intact" if self.path.exists() else "none"

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "status": self.status, "entries": self.entries, "ok": self.ok,
                "problems": self.problems}


def verify(config: PlatformConfig | None = None, *, path: Path | None = None) -> AuditReport:
    """Recompute the chain; name each edited, inserted, deleted, reordered or cut entry."""
    path = path or log_path(config)
    gone = _missing(path)
    if gone:
        return AuditReport(path=path, entries=0, problems=[gone], missing=True)
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
                  tracking_uri: str | None = None, claims: dict[str, dict[str, str]] | None = None) -> list[str]:
    """Compare the log with what the tracking server recorded of it, both ways.

    ``anchors`` maps each run id on the server to its ``idsp.audit.entry`` tag
    ("<seq>:<hash>" of its run.started entry) or None. A chain rewritten consistently
    (every hash recomputed, head file too) still verifies on its own, but not against
    hashes the server recorded before the rewrite. And every run.started entry of a run on
    this server (``tracking_uri``) must find its run there with the same tag: a removed or
    changed tag is named too. A run with no tag and no run.started entry is named (it was
    made around idsp), and with ``claims`` (each run's tags, ``tracking.run_claims``) a run
    whose tags claim another official status or approval than the log recorded is named."""
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
    started_ids = {(e.get("data") or {}).get("run_id") for e in started}
    for run_id, tag in sorted(anchors.items(), key=lambda kv: str(kv[1])):
        if tag is None:
            if run_id not in started_ids:
                problems.append(f"MLflow run {run_id} has no audit record (no {AUDIT_TAG} tag, no run.started entry): "
                                "it was made around idsp's gated case.run, so nothing shows it was allowed")
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
        elif claims and run_id in claims:
            problems.extend(p for p in official_problems(run_id, claims[run_id], recorded, purpose=None)
                            if "claims approval" in p or "tagged official" in p)
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

