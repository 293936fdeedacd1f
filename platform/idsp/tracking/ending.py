"""Ending a run on the tracking server, and the runs whose end could not be written.

Rule: a run is always ended — FINISHED, or FAILED with its (scrubbed) reason; when the
server cannot be told, the run is remembered in ``<home>/mlflow/unfinished-runs.jsonl``
and the next run to reach that server marks it FAILED. Nothing here raises for a server
that is gone: the caller decides what to tell the user.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idsp.tracking.provenance import TAG

if TYPE_CHECKING:  # pragma: no cover
    from idsp.config import PlatformConfig

UNFINISHED_FILE = "unfinished-runs.jsonl"


def unfinished_path(config: PlatformConfig) -> Path:
    return Path(config.home) / "mlflow" / UNFINISHED_FILE


def remember_unfinished(config: PlatformConfig, uri: str | None, run_id: str, reason: str) -> None:
    path = unfinished_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"uri": uri, "run_id": run_id, "reason": reason}) + "\n")


def close_unfinished(client: Any, config: PlatformConfig, uri: str) -> list[str]:
    """Mark runs whose end could not be written earlier as FAILED; return their ids."""
    path = unfinished_path(config)
    if not path.is_file():
        return []
    keep, closed = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if item.get("uri") != uri:
            keep.append(line)
            continue
        try:
            client.set_tag(item["run_id"], f"{TAG}failure", item.get("reason", "")[:4000])
            client.set_terminated(item["run_id"], status="FAILED")
            closed.append(item["run_id"])
        except Exception:  # still unreachable or gone: keep it for the next time
            keep.append(line)
    fd, tmp = tempfile.mkstemp(dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("".join(x + "\n" for x in keep))
    os.replace(tmp, path)
    return closed


def terminate(client: Any, run_id: str, status: str, reason: str | None, *, fluent: bool) -> None:
    """Write the end of a run: its failure reason (already scrubbed) and its status."""
    if reason:
        client.set_tag(run_id, f"{TAG}failure", reason)
    if fluent:
        import mlflow

        active = mlflow.active_run()
        if active is not None and active.info.run_id == run_id:
            mlflow.end_run(status=status)
            return
    client.set_terminated(run_id, status=status)


def drop_fluent_run(run_id: str) -> None:
    """Forget a fluent run whose end could not be written, without another server call."""
    try:
        from mlflow.tracking import fluent

        stack = fluent._active_run_stack.get()
        stack[:] = [r for r in stack if r.info.run_id != run_id]
    except Exception:  # internals moved: at worst the next start_run reports it is nested
        pass
