"""One gated MLflow run of a case: ``with case.run("train", datasets=[...]) as run:``.

Rule: the gate is asked before anything reaches MLflow — a refused run creates no MLflow
run at all; every run that is created carries its provenance as tags set at creation; a
run is always ended — FINISHED, or FAILED with the reason — also when the process exits
inside it. ``TrackedRun`` does the life cycle (gate, server, creation, audit, end); what
is logged into it is ``RunLogging``, what it produces is ``RunModels``.
"""

from __future__ import annotations

import atexit
import getpass
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from idsp.errors import GateRefused, PIIFound, UserError
from idsp.tracking import ending, runner_mode
from idsp.tracking.client import TrackingServerUnavailable, connect, recorded_experiment
from idsp.tracking.guard import check_text, kvk_named, scrub
from idsp.tracking.provenance import TAG, run_tags
from idsp.tracking.run_logging import MetricBuffer, RunLogging
from idsp.tracking.run_models import RunModels
from legal_ethics import audit, gate, render
from legal_ethics.audit import AUDIT_TAG  # "<seq>:<hash>" of a run's run.started entry
from legal_ethics.gate import GateDecision
from legal_ethics.schema import Purpose

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile
    from idsp.config import PlatformConfig

_OPEN_RUNS: weakref.WeakSet[TrackedRun] = weakref.WeakSet()


def open_run(case: CaseFile) -> TrackedRun | None:
    """The run of ``case`` open in this process, if any (the newest when several are)."""
    runs = [r for r in list(_OPEN_RUNS) if r.case.id == case.id and not r._ended and r.run_id is not None]
    return runs[-1] if runs else None


@atexit.register
def _end_open_runs() -> None:
    for r in list(_OPEN_RUNS):
        r._finish("FAILED", "the Python process exited before the run was closed")


def run(
    case: CaseFile,
    name: str,
    datasets: Sequence[str] = (),
    *,
    params: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    experiment: str | None = None,
    config: PlatformConfig | None = None,
    actor: str | None = None,
    purpose: Purpose = "use",
) -> TrackedRun:
    """A gated MLflow run of ``case`` (use as a context manager); see ``TrackedRun``."""
    return TrackedRun(
        case, name, list(datasets), params=params, tags=tags, experiment=experiment,
        config=config, actor=actor, purpose=purpose,
    )  # fmt: skip


class TrackedRun(RunLogging, RunModels):
    """One MLflow run, asked of the gate, tagged with its provenance, checked for identifiers.

    Metrics are buffered and sent with ``log_batch``; the buffer is flushed when the run
    ends, also when the process exits inside the run.
    """

    def __init__(
        self,
        case: CaseFile,
        name: str,
        datasets: list[str],
        *,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        experiment: str | None = None,
        config: PlatformConfig | None = None,
        actor: str | None = None,
        purpose: Purpose = "use",
    ):
        self.case = case
        self.purpose = purpose
        self.name = name
        self.datasets = list(dict.fromkeys(datasets))
        self._initial_params = dict(params or {})
        self._initial_tags = dict(tags or {})
        self.experiment = experiment or case.id
        self._config = config
        self.actor = actor
        self.run_id: str | None = None
        self.official = False
        self.decision: GateDecision | None = None
        self.uri: str | None = None
        self._client: Any = None
        self._metrics = MetricBuffer()
        self._ended = False
        self._fluent = False
        self._checked_names: set[str] = set()
        self._runner = False  # logging into the platform runner's run (runner_mode)

    def __enter__(self) -> TrackedRun:
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self._finish("FINISHED", raise_errors=True)
        else:
            self._finish("FAILED", f"{exc_type.__name__}: {exc}")

    @property
    def config(self) -> PlatformConfig:
        if self._config is None:
            from idsp.config import load_config

            self._config = load_config()
        return self._config

    def start(self) -> TrackedRun:
        """Ask the gate, reach the server, create the run with every provenance tag."""
        check_text(self.name, "the run name")
        for key, value in {**self._initial_params, **self._initial_tags}.items():
            check_text(f"{key} {value}", f"{key!r}", kvk_context=kvk_named(key))

        attached = runner_mode.attached()  # the platform's runner: the service decided
        if attached is not None:
            return self._attach(attached)
        runner_mode.refuse_use_here(self.case, self.datasets, self.purpose)

        # 1. The gate, before anything reaches MLflow.
        decision = gate.check(self.case, self.datasets, purpose=self.purpose, config=self.config)
        if not decision.allowed:
            self._audit("run.refused", reasons=decision.reasons)
            raise GateRefused(
                f"the run gate refused run {self.name!r} of case {self.case.id} on "
                f"{', '.join(self.datasets) or 'no datasets'}",
                reasons=decision.reasons,
            )
        self.decision = decision
        self.official = decision.official

        # 2. The server, with brief retries; runs left unfinished there are closed first.
        self.uri, self._client = connect(self.config)
        ending.close_unfinished(self._client, self.config, self.uri)

        # 3. One create_run with every provenance tag, so no run exists half-tagged.
        self.run_id = self._create(decision)
        _OPEN_RUNS.add(self)
        try:
            self._fill(decision)
        except BaseException as exc:
            self._finish("FAILED", f"{type(exc).__name__}: {exc}")
            raise
        return self

    def _attach(self, attached: runner_mode.Attached) -> TrackedRun:
        """Log into the run the service made for this official run; it ends it, not we."""
        self.official, self.purpose = attached.official, attached.purpose  # type: ignore[assignment]
        self._runner = True
        self.uri, self._client = connect(self.config)
        self.run_id = attached.run_id
        _OPEN_RUNS.add(self)
        if self._initial_params:
            self.log_params(self._initial_params)
        for key, value in self._initial_tags.items():
            if not key.startswith(TAG):  # the service's tags stay the service's
                self._client.set_tag(self.run_id, key, str(value))
        self._activate_fluent()
        return self

    def _create(self, decision: GateDecision) -> str:
        tags = run_tags(self.case, decision, self.datasets, purpose=self.purpose, config=self.config)
        tags.update({key: str(value) for key, value in self._initial_tags.items()})
        client = self._client
        recorded = recorded_experiment(self.case.id) if self.experiment == self.case.id else None
        if recorded is not None:  # the experiment the platform made for the case, by its id
            return client.create_run(recorded, run_name=self.name, tags=tags).info.run_id
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is None:
            experiment_id = client.create_experiment(
                self.experiment,
                tags={f"{TAG}case_id": self.case.id, f"{TAG}zaaknummer": self.case.spec.zaaknummer},
            )
        else:
            experiment_id = experiment.experiment_id
        return client.create_run(experiment_id, run_name=self.name, tags=tags).info.run_id

    def _fill(self, decision: GateDecision) -> None:
        """What follows creation: parameters, quality evidence, checklist, fluent run, audit anchor."""
        if self._initial_params:
            self.log_params(self._initial_params)
        for evidence in decision.quality:
            for path in evidence.files:
                self._client.log_artifact(self.run_id, str(path), f"quality/{evidence.dataset}")
        if decision.official:
            self._log_checklist()
        self._activate_fluent()
        started = self._audit(
            "run.started",
            run_id=self.run_id,
            official=decision.official,
            purpose=self.purpose,  # registration and the model card read these from the log, not from tags
            approval_ids=list(decision.approval_ids),
            checklist_hash=decision.checklist_hash,
            tracking_uri=self.uri,
        )
        # The audit entry's seq and hash, kept by the tracking server too: whoever can
        # rewrite the log consistently cannot also rewrite what MLflow recorded.
        self._client.set_tag(self.run_id, AUDIT_TAG, f"{started['seq']}:{started['hash']}")

    def _log_checklist(self) -> None:
        """The approved checklist as the reviewers saw it, beside the run (Markdown, HTML)."""
        view = render.view(self.case, config=self.config)
        for ext, renderer in render.RENDERERS.items():
            text = renderer(view)
            try:
                check_text(text, f"checklist.{ext}")
            except PIIFound:
                self._client.set_tag(self.run_id, f"{TAG}checklist_artifact", "not logged: it contains identifiers")
                return
            self._client.log_text(self.run_id, text, f"checklist/checklist.{ext}")

    def _audit(self, event: str, **data: Any) -> dict[str, Any]:
        return audit.append(
            event,
            actor=self.actor or _whoami(),
            case_id=self.case.id,
            config=self.config,
            run_name=self.name,
            datasets=self.datasets,
            **data,
        )

    def _finish(self, status: str, reason: str | None = None, *, raise_errors: bool = False) -> None:
        """End the run once; with ``raise_errors`` a run that could not be ended cleanly raises."""
        if self._ended or self.run_id is None:
            return
        self._ended = True
        _OPEN_RUNS.discard(self)
        if self._runner:  # the service ends the runner's run and records it
            self.flush()
            if self._fluent:
                ending.drop_fluent_run(self.run_id)
            return
        error: BaseException | None = None
        try:
            self.flush()
        except Exception as exc:  # the end must still be attempted
            status, error = "FAILED", exc
            reason = (reason + "; " if reason else "") + f"metrics not all written: {exc}"
        try:
            ending.terminate(self._client, self.run_id, status, scrub(reason) if reason else None, fluent=self._fluent)
        except Exception as exc:
            ending.remember_unfinished(self.config, self.uri, self.run_id, scrub(reason or f"could not end: {exc}"))
            if self._fluent:
                ending.drop_fluent_run(self.run_id)
            error = error or exc
        try:
            self._audit("run.ended", run_id=self.run_id, status=status)
        except Exception:  # the audit log must not hide the run's own outcome
            pass
        if error is not None and raise_errors:
            raise TrackingServerUnavailable(
                f"run {self.run_id} could not be completed on the tracking server at {self.uri} ({error})",
                fix="It is recorded as unfinished and will be marked FAILED by the next run; "
                "check the server and log the run again",
            ) from None

    def end(self) -> None:
        """End the run as FINISHED (when not used as a context manager)."""
        self._finish("FINISHED", raise_errors=True)

    def _need_open(self) -> str:
        if self.run_id is None or self._ended:
            raise UserError(
                f"run {self.name!r} is not open",
                fix="Log inside `with case.run(...) as run:`",
            )
        return self.run_id


def _whoami() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"
