"""The audit log against its administrator: every run keeps the seq and hash of its
run.started entry on the tracking server, so a log rewritten consistently (every hash
recomputed, head file too), which still verifies on its own, is caught by comparing."""

from __future__ import annotations

import json

import pytest
from idsp import tracking
from mlflow.tracking import MlflowClient

from legal_ethics import audit
from legal_ethics.canonical import canonical_json, sha256_hex

pytestmark = pytest.mark.slow


def rewrite_consistently(path, change) -> None:
    """What an administrator with write access could do: edit, then re-chain everything."""
    entries = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    change(entries)
    prev = audit.GENESIS
    for seq, entry in enumerate(entries, start=1):
        entry.update(seq=seq, prev=prev)
        entry.pop("hash", None)
        entry["hash"] = prev = sha256_hex(canonical_json(entry))
    path.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries), encoding="utf-8")
    path.with_name(path.name + ".head").write_text(json.dumps({"seq": len(entries), "hash": prev}) + "\n")


def test_a_consistently_rewritten_log_disagrees_with_the_tracking_server(case, tracked, cli):
    ids = []
    for name in ("eerste", "tweede"):
        with case.run(name, datasets=["synthetisch"]) as run:
            run.log_metric("x", 1.0)
        ids.append(run.run_id)
    tag = MlflowClient(tracked.url).get_run(ids[0]).data.tags[tracking.AUDIT_TAG]
    seq, _, digest = tag.partition(":")
    entry = next(e for e in audit.entries() if e["seq"] == int(seq))
    assert entry["hash"] == digest and entry["event"] == "run.started" and entry["data"]["run_id"] == ids[0]

    anchors = tracking.audit_anchors()
    assert sorted(anchors) == sorted(ids) and all(anchors.values())
    assert audit.verify().ok and audit.check_anchors(anchors, tracking_uri=tracked.url) == []

    # a member with EDIT on the experiment removes a run's tag: named, not silently skipped
    client = MlflowClient(tracked.url)
    client.delete_tag(ids[1], tracking.AUDIT_TAG)
    problems = audit.check_anchors(tracking.audit_anchors(), tracking_uri=tracked.url)
    assert problems == [f"MLflow run {ids[1]} no longer carries its audit entry {anchors[ids[1]].split(':')[0]} "
                        f"(tag {tracking.AUDIT_TAG} removed or changed)"]
    client.set_tag(ids[1], tracking.AUDIT_TAG, "not-a-number:x")
    assert any("malformed" in p for p in audit.check_anchors(tracking.audit_anchors(), tracking_uri=tracked.url))
    client.set_tag(ids[1], tracking.AUDIT_TAG, anchors[ids[1]])
    code, out, _ = cli("ethics", "audit", "verify", "--against-tracking")
    assert code == 0 and "agrees with the 2 run(s)" in " ".join(out.split())

    # Remove the first run's start from the log and re-chain: the log verifies on its own ...
    path = audit.log_path()
    rewrite_consistently(path, lambda entries: entries.remove(next(
        e for e in entries if e["event"] == "run.started" and e["data"]["run_id"] == ids[0])))
    assert audit.verify().ok
    # ... but not against what the tracking server recorded
    problems = audit.check_anchors(tracking.audit_anchors(), tracking_uri=tracked.url)
    assert any("rewritten at or before entry" in p for p in problems), problems
    code, out, _ = cli("ethics", "audit", "verify", "--against-tracking", "--json")
    assert code == 1
    report = json.loads(out)
    assert report["runs_compared"] == 2 and not report["ok"] and report["problems"]
