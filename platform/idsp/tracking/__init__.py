"""Gated, fully tagged MLflow runs of a case: ``with case.run("train", datasets=[...]) as run:``.

Rule: the gate (``legal_ethics.gate.check``) is asked before anything reaches MLflow — a
refused run creates no MLflow run at all; every run that is created carries its
provenance (case, zaaknummer, commit, DVC hashes, checklist hash, approval ids, quality
results, versions, key ids) as tags set atomically at creation; nothing that contains a
raw identifier (BSN, IBAN, e-mail, phone, KvK) is logged; a run is always ended — FINISHED,
or FAILED with the reason — and a run whose end could not be written is remembered and
marked FAILED by the next run. Only an official, approved run can register a model.
MLflow is imported when a run starts.

One module per concern: ``client`` (the server's address and health), ``server`` (``idsp
tracking serve``), ``guard`` (identifiers), ``provenance`` (tags), ``run`` with
``run_logging`` and ``run_models`` (the run), ``ending`` (ending runs, unfinished ones),
``registry`` (model registration, audit anchors, last run), ``model_card``, ``fairness``.
Submodules import each other, never this package; this file only re-exports.
"""

from __future__ import annotations

from idsp.tracking.client import (
    TrackingServerUnavailable,
    connect,
    ensure_server,
    mlflow_client,
    set_client_env,
    tracking_uri,
)
from idsp.tracking.guard import check_file, check_text, find_identifiers
from idsp.tracking.provenance import APPROVAL_NONE, TAG, git_state, package_versions, tag_key
from idsp.tracking.registry import audit_anchors, last_run, register_model
from idsp.tracking.run import TrackedRun, run
from legal_ethics.audit import AUDIT_TAG

__all__ = [
    "APPROVAL_NONE", "AUDIT_TAG", "TAG", "TrackedRun", "TrackingServerUnavailable", "audit_anchors",
    "check_file", "check_text", "connect", "ensure_server", "find_identifiers", "git_state", "last_run",
    "mlflow_client", "package_versions", "register_model", "run", "set_client_env", "tag_key", "tracking_uri",
]  # fmt: skip
