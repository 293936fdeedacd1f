"""What an open run produces beyond numbers: the model, its fairness report, its model card.

Rule: a model is logged into the run under a checked name and registered only through
``registry.register_model`` (official, approved runs only, the gate asked again); the
fairness report and the model card go through the run's own guarded logging.
``RunModels`` is a mixin of ``TrackedRun``: it relies on the run's ``case``, ``config``,
``run_id``, ``uri`` and its logging methods.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idsp.tracking import fairness, model_card, registry
from idsp.tracking.guard import check_text

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile
    from idsp.config import PlatformConfig


class RunModels:
    """The model half of ``TrackedRun``."""

    if TYPE_CHECKING:  # what TrackedRun and RunLogging provide
        case: CaseFile
        run_id: str | None
        uri: str | None
        _fluent: bool

        @property
        def config(self) -> PlatformConfig: ...
        def _need_open(self) -> str: ...
        def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any: ...
        def flush(self) -> None: ...
        def log_metric(self, key: str, value: float, step: int | None = None) -> None: ...
        def log_dict(self, data: dict[str, Any], artifact_file: str) -> None: ...
        def log_figure(self, figure: Any, artifact_file: str) -> None: ...
        def log_artifact(self, path: Any, artifact_path: str | None = None) -> None: ...

    def _activate_fluent(self) -> None:
        """Make this the active fluent run, so ``mlflow.<flavor>.log_model`` lands in it."""
        import mlflow

        if self.uri is not None and mlflow.get_tracking_uri() != self.uri:
            mlflow.set_tracking_uri(self.uri)
        if mlflow.active_run() is None:
            mlflow.start_run(run_id=self.run_id)
            self._fluent = True

    def log_model(self, model: Any, name: str = "model", *, flavor: str = "sklearn", **kw: Any) -> Any:
        """Log a model with an MLflow flavour into this run (checked names, no registration)."""
        self._need_open()
        check_text(name, f"model name {name!r}")
        module = importlib.import_module(f"mlflow.{flavor}")
        self._activate_fluent()
        return self._call(module.log_model, model, name=name, **kw)

    def log_fairness(self, y_true, y_pred, sensitive, control=None, **kw: Any) -> dict[str, Any]:
        """Fairness per group with bootstrap intervals: JSON artefact, metrics and a plot."""
        self._need_open()
        report = fairness.compute(y_true, y_pred, sensitive, control, **kw)
        self.log_dict(report, "reports/fairness.json")
        for key, value in fairness.headline_metrics(report).items():
            self.log_metric(key, value)
        figure = fairness.plot(report)
        try:
            self.log_figure(figure, "reports/fairness.png")
        finally:
            import matplotlib.pyplot as plt

            plt.close(figure)
        self.flush()
        return report

    def register_model(self, name: str, artifact_path: str = "model") -> dict[str, Any]:
        """Register this run's model; only an official, approved run may."""
        run_id = self._need_open()
        self.flush()
        if getattr(self, "_runner", False):  # the service registers, once the run has ended
            return {"deferred": True, "name": name, "run_id": run_id,
                    "how": f"idsp tracking register {run_id} {name}  (the platform service registers it)"}
        return registry.register_model(
            run_id, name, artifact_path=artifact_path, config=self.config, case=self.case
        )

    def model_card(self, *, log: bool = True) -> dict[str, Path]:
        """Write (and log) the model card of this run, Markdown and HTML."""
        run_id = self._need_open()
        self.flush()
        paths = model_card.write(run_id, config=self.config, case=self.case)
        if log:
            for path in paths.values():
                self.log_artifact(path, "model_card")
        return paths
