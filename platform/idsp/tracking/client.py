"""Reaching the MLflow tracking server: its URI, a brief health check, a client with short retries.

Rule: the platform setting (``tracking.uri`` / ``IDSP_TRACKING__URI``) is the one source
of the server's address; a server that does not answer is reported in seconds, by name,
as ``TrackingServerUnavailable`` — never as a stack of retries. MLflow is imported only
when a client is made. A client for a loopback server is made only when the socket listening
there belongs to root (the hub's MLflow) or to this user (their own ``idsp tracking serve``):
the client sends the user's MLflow password with every call, and while the server is down
any local account could bind its port (``idsp.listener``).
"""

from __future__ import annotations

import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from idsp import listener
from idsp.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from mlflow.tracking import MlflowClient

    from idsp.config import PlatformConfig

T = TypeVar("T")


class TrackingServerUnavailable(UserError):
    """The tracking server did not answer after the configured retries."""


_ENV_OURS: set[str] = set()


def set_client_env(config: PlatformConfig) -> None:
    """Short client retries: a dead server should be reported in seconds, not minutes.

    MLflow reads these variables on every request; a value the user set before idsp did
    is left alone, one idsp set follows the configuration in force.
    """
    wanted = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(config.tracking.retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(math.ceil(config.tracking.timeout_seconds))),
    }
    for key, value in wanted.items():
        if key not in os.environ or key in _ENV_OURS:
            os.environ[key] = value
            _ENV_OURS.add(key)


def tracking_uri(config: PlatformConfig) -> str:
    # Not MLFLOW_TRACKING_URI: mlflow.set_tracking_uri() rewrites that variable in-process,
    # so the platform setting (tracking.uri / IDSP_TRACKING__URI) is the one source.
    return config.tracking.client_uri()


def ensure_server(uri: str, config: PlatformConfig) -> None:
    """Wait for ``/health`` with brief retries; raise ``TrackingServerUnavailable`` naming it."""
    if not uri.startswith(("http://", "https://")):
        return
    attempts = config.tracking.retries + 1
    last = ""
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=config.tracking.timeout_seconds) as r:
                if r.status == 200:
                    return
                last = f"HTTP {r.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        if attempt + 1 < attempts:
            time.sleep(min(0.5 * 2**attempt, 4.0))
    raise TrackingServerUnavailable(
        f"the MLflow tracking server at {uri} does not answer ({last}; {attempts} attempts)",
        fix="Start it with `idsp tracking serve`, or point tracking.uri (or MLFLOW_TRACKING_URI) "
        "at the running server",
    )


def recorded_experiment(case_id: str) -> str | None:
    """On the hub: the id of the case's MLflow experiment as the platform service recorded it
    when it made the case (``GET api/cases``), so a run never lands in an experiment someone
    else made under the case's name. None off the hub, and for a case the service has no id
    for (made before the service made experiments): the caller then finds it by name."""
    from idsp.service.link import hub_service, on_hub

    if not on_hub():
        return None
    for case in hub_service().cases():
        if case.get("id") == case_id and case.get("experiment_id"):
            return str(case["experiment_id"])
    return None


def mlflow_client(uri: str) -> MlflowClient:
    # before the first call: MlflowClient sends MLFLOW_TRACKING_PASSWORD with each one
    listener.check(uri, listener.own_uids(), "the MLflow tracking server")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def connect(config: PlatformConfig) -> tuple[str, MlflowClient]:
    """(uri, client) of the configured server, once it has answered its health check."""
    uri = tracking_uri(config)
    set_client_env(config)
    ensure_server(uri, config)
    return uri, mlflow_client(uri)


def is_connection_error(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}"
    return any(
        s in text
        for s in ("ConnectionError", "Max retries exceeded", "Connection refused", "ConnectTimeout", "ReadTimeout")
    )


def call_server(uri: str | None, run_id: str | None, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)``, with a lost server reported as ``TrackingServerUnavailable``."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:
        if is_connection_error(exc):
            raise TrackingServerUnavailable(
                f"the MLflow tracking server at {uri} stopped answering during run {run_id} "
                f"({type(exc).__name__})",
                fix="The run will be marked FAILED; restart the server (`idsp tracking serve`) and run again",
            ) from None
        raise
