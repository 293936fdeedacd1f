"""The audit log: chained, append-only, safe under concurrent writers; verify finds every break."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from legal_ethics import audit


@pytest.fixture
def log(idsp_home):
    for i in range(5):
        audit.append("answered", actor=f"user{i}", case_id="ce-risico", key=f"ak.grw-0{i}")
    return audit.log_path()


def _lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def _write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_intact_log_verifies(log):
    report = audit.verify()
    assert report.ok and report.entries == 5
    entries = list(audit.entries())
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0]["prev"] == audit.GENESIS
    assert all(b["prev"] == a["hash"] for a, b in zip(entries, entries[1:], strict=False))


def test_append_returns_the_entry_as_written(idsp_home):
    entry = audit.append("run.started", actor="pim", case_id="c1", run_id="abc")
    assert entry == list(audit.entries())[-1]
    assert entry["data"] == {"run_id": "abc"} and entry["event"] == "run.started"


def test_edited_entry_is_detected(log):
    lines = _lines(log)
    entry = json.loads(lines[2])
    entry["actor"] = "mallory"
    lines[2] = json.dumps(entry, sort_keys=True)
    _write(log, lines)
    report = audit.verify()
    assert not report.ok
    assert any("line 3 (seq 3, answered) was edited" in p for p in report.problems)


def test_edit_with_recomputed_hash_breaks_the_chain(log):
    lines = _lines(log)
    entry = json.loads(lines[1])
    entry["actor"] = "mallory"
    entry["hash"] = audit.entry_hash(entry)
    lines[1] = json.dumps(entry, sort_keys=True)
    _write(log, lines)
    problems = audit.verify().problems
    assert any("line 3 (seq 3) does not chain" in p for p in problems)


def test_deleted_entry_is_detected(log):
    lines = _lines(log)
    del lines[1]
    _write(log, lines)
    problems = audit.verify().problems
    assert any("seq jumps from 1 to 3 (1 entry deleted)" in p for p in problems)


def test_reordered_entries_are_detected(log):
    lines = _lines(log)
    lines[1], lines[2] = lines[2], lines[1]
    _write(log, lines)
    problems = audit.verify().problems
    assert any("reordered or inserted" in p or "jumps" in p for p in problems)


def test_inserted_entry_is_detected(log):
    lines = _lines(log)
    fake = json.loads(lines[1])
    fake["actor"] = "mallory"
    fake["hash"] = audit.entry_hash(fake)
    lines.insert(2, json.dumps(fake, sort_keys=True))
    _write(log, lines)
    assert not audit.verify().ok


def test_truncated_log_is_detected(log):
    lines = _lines(log)
    _write(log, lines[:3])
    problems = audit.verify().problems
    assert any("cut off the end" in p for p in problems)


def test_garbage_line_is_detected(log):
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("not json\n")
    assert any("line 6 is not a readable audit entry" in p for p in audit.verify().problems)


def test_appending_after_a_damaged_last_entry_is_refused(log):
    from idsp.errors import Refused

    with open(log, "a", encoding="utf-8") as fh:
        fh.write('{"seq": 6, "tru')
    with pytest.raises(Refused, match="damaged entry"):
        audit.append("answered", actor="pim")


def _append_many(home, n):
    os.environ["IDSP_HOME"] = home
    for i in range(n):
        audit.append("gate.checked", actor="worker", case_id="c", i=i)


def test_concurrent_writers_lose_nothing(idsp_home):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(idsp_home), 25)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    report = audit.verify()
    assert report.ok, report.problems
    assert report.entries == 100
