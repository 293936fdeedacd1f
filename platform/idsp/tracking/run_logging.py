"""What a data scientist logs into an open run: parameters, tags, metrics, texts, files, figures.

Rule: every name, value, text and file is passed through the identifier guard before it
is sent, and a finding refuses the call (``PIIFound``); metrics are buffered and sent with
``log_batch`` (at most 1,000 per request, and at least every few seconds), so logging one
metric at a time costs no round trip. ``RunLogging`` is a mixin of ``TrackedRun``: it
relies on the run's ``run_id``, ``uri``, ``_client`` and ``_need_open``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from idsp.errors import UserError
from idsp.tracking.client import call_server
from idsp.tracking.guard import check_file, check_text, kvk_named
from idsp.tracking.provenance import TAG

T = TypeVar("T")
BATCH_LIMIT = 1000  # MLflow's LogBatch limit for metrics
FLUSH_SECONDS = 5.0


class MetricBuffer:
    """Metrics waiting to be sent; safe to fill from several threads."""

    def __init__(self) -> None:
        self._items: list[Any] = []
        self._lock = threading.Lock()
        self._last_flush = time.monotonic()

    def add(self, metric: Any) -> bool:
        """Keep ``metric``; True when it is time to send (a full batch, or a while since the last)."""
        with self._lock:
            self._items.append(metric)
            full = len(self._items) >= BATCH_LIMIT
        return full or time.monotonic() - self._last_flush > FLUSH_SECONDS

    def take(self) -> list[Any]:
        with self._lock:
            pending, self._items = self._items, []
            self._last_flush = time.monotonic()
        return pending

    def put_back(self, unsent: list[Any]) -> None:
        with self._lock:
            self._items[:0] = unsent


class RunLogging:
    """The logging half of ``TrackedRun``."""

    if TYPE_CHECKING:  # what TrackedRun provides
        run_id: str | None
        uri: str | None
        _client: Any
        _metrics: MetricBuffer
        _checked_names: set[str]

        def _need_open(self) -> str: ...

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return call_server(self.uri, self.run_id, fn, *args, **kwargs)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        self._need_open()
        items = []
        for key, value in params.items():
            check_text(f"{key} {value}", f"parameter {key!r}", kvk_context=kvk_named(key))
            items.append(Param(str(key), str(value)))
        for i in range(0, len(items), 100):
            self._call(self._client.log_batch, self.run_id, params=items[i : i + 100])

    def set_tag(self, key: str, value: Any) -> None:
        self._need_open()
        if key.startswith(TAG) or key.startswith("mlflow."):
            raise UserError(
                f"tag {key!r} is reserved for provenance",
                fix="Use a tag name that does not start with 'idsp.' or 'mlflow.'",
            )
        check_text(f"{key} {value}", f"tag {key!r}", kvk_context=kvk_named(key))
        self._call(self._client.set_tag, self.run_id, key, str(value))

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        from mlflow.entities import Metric

        self._need_open()
        if key not in self._checked_names:
            check_text(key, f"metric name {key!r}")
            self._checked_names.add(key)
        metric = Metric(key, float(value), int(time.time() * 1000), int(step or 0))
        if self._metrics.add(metric):
            self.flush()

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def flush(self) -> None:
        """Send buffered metrics now (``log_batch``, 1,000 per request)."""
        pending = self._metrics.take()
        for i in range(0, len(pending), BATCH_LIMIT):
            try:
                self._call(self._client.log_batch, self.run_id, metrics=pending[i : i + BATCH_LIMIT])
            except BaseException:
                self._metrics.put_back(pending[i:])
                raise

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        self._need_open()
        check_file(Path(path))
        if Path(path).is_dir():
            self._call(self._client.log_artifacts, self.run_id, str(path), artifact_path)
        else:
            self._call(self._client.log_artifact, self.run_id, str(path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self._need_open()
        check_text(f"{artifact_file}\n{text}", f"artefact {artifact_file}")
        self._call(self._client.log_text, self.run_id, text, artifact_file)

    def log_dict(self, data: dict[str, Any], artifact_file: str) -> None:
        self.log_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), artifact_file)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        self._need_open()
        check_text(artifact_file, f"artefact {artifact_file}")
        for text in figure_texts(figure):
            check_text(text, f"the labels of figure {artifact_file}")
        self._call(self._client.log_figure, self.run_id, figure, artifact_file)


def figure_texts(figure: Any) -> list[str]:
    """Every title, axis label, tick label and legend entry of a Matplotlib figure."""
    texts = []
    try:
        for ax in figure.get_axes():
            texts.append(ax.get_title())
            texts.append(ax.get_xlabel())
            texts.append(ax.get_ylabel())
            texts.extend(t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels())
            legend = ax.get_legend()
            if legend is not None:
                texts.extend(t.get_text() for t in legend.get_texts())
    except AttributeError:
        pass
    return [t for t in texts if t]
