"""The MLflow tracking server of the platform: SQLite + local artefacts, or PostgreSQL.

Rule: the server runs in its own process group and is stopped as a group — MLflow 3
starts uvicorn workers and job runners that outlive a plain kill of the parent, so
SIGTERM/SIGINT to ``idsp tracking serve`` ends every child. With ``--auth`` the server
refuses to start without explicit admin credentials (never MLflow's shipped defaults),
it never starts against a backend it cannot reach without saying which one, and it never
serves the hub's own store without ``--auth`` (that would hand every case's runs to anyone
who can reach the port).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from idsp.errors import ConfigError, UserError

if TYPE_CHECKING:  # pragma: no cover
    from idsp.config import PlatformConfig

STOP_GRACE_SECONDS = 10.0
MIN_ADMIN_PASSWORD = 12


@dataclass(frozen=True)
class ServerSpec:
    host: str
    port: int
    backend_store_uri: str
    artifacts_destination: str
    workers: int = 1
    auth: bool = False
    auth_config: str | None = None
    allowed_hosts: str | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            sys.executable, "-m", "mlflow", "server",
            "--host", self.host,
            "--port", str(self.port),
            "--backend-store-uri", self.backend_store_uri,
            "--artifacts-destination", self.artifacts_destination,
            "--serve-artifacts",
            "--workers", str(self.workers),
            "--x-frame-options", "DENY",  # the UI is never framed (clickjacking)
        ]  # fmt: skip
        if self.allowed_hosts:
            cmd += ["--allowed-hosts", self.allowed_hosts]
        if self.auth:
            cmd += ["--app-name", "basic-auth"]
        return cmd


@dataclass(frozen=True)
class HubStore:
    """Where the hub of this platform home keeps its MLflow data: its folder (SQLite file,
    artefacts, auth database) and its backend URI (which may be PostgreSQL elsewhere)."""

    folder: Path
    backend_uri: str

    def holds(self, backend: str, artifacts: str) -> bool:
        if backend.replace("postgresql+psycopg2://", "postgresql://") == self.backend_uri.replace(
            "postgresql+psycopg2://", "postgresql://"
        ):
            return True
        local = [artifacts.removeprefix("file://")] if "://" not in artifacts or artifacts.startswith("file://") else []
        if backend.startswith("sqlite:///"):
            local.append(backend.removeprefix("sqlite:///"))
        folder = self.folder.resolve()
        return any(Path(p).resolve().is_relative_to(folder) for p in local)

    def refuse_open(self, backend: str, artifacts: str) -> None:
        if self.holds(backend, artifacts):
            raise ConfigError(
                f"refusing to serve the hub's own MLflow store ({redact_uri(backend)}, artefacts "
                f"{artifacts}) without login: every local user could read every case's runs",
                where=f"--backend-store-uri / --artifacts-destination (the hub's store is in {self.folder})",
                fix="Add --auth (the hub itself runs `idsp tracking serve --auth`), or serve a store of "
                "your own (--backend-store-uri sqlite:///OTHER/mlflow.db --artifacts-destination OTHER/artifacts, "
                "or another IDSP_HOME)",
            )


def redact_uri(uri: str) -> str:
    """A database URI with its password replaced, for messages."""
    if "://" in uri and "@" in uri:
        scheme, rest = uri.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else uri
    return uri


def prepare(
    config: PlatformConfig,
    *,
    host: str | None = None,
    port: int | None = None,
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
    workers: int | None = None,
    auth: bool = False,
    auth_config: str | None = None,
    allowed_hosts: str | None = None,
    environ: dict[str, str] | None = None,
    hub_store: HubStore | None = None,
) -> ServerSpec:
    """Resolve the settings, create local folders, check the backend and the auth secrets.
    ``hub_store``: the store of a hub set up in this platform home, refused without auth."""
    environ = dict(os.environ if environ is None else environ)
    backend = backend_store_uri or config.tracking_backend_uri()
    artifacts = artifacts_destination or config.tracking_artifacts()
    if hub_store is not None and not auth:
        hub_store.refuse_open(backend, artifacts)
    if backend.startswith("sqlite:///"):
        Path(backend.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    elif backend.startswith(("postgresql://", "postgresql+psycopg2://")):
        check_postgres(backend)
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the platform ships psycopg2.
        backend = backend.replace("postgresql://", "postgresql+psycopg2://", 1)
    elif not backend.startswith(("mysql", "mssql")):
        raise ConfigError(
            f"backend store {redact_uri(backend)!r} is not a database URI",
            where="--backend-store-uri / tracking.backend_store_uri",
            fix="Use sqlite:///PATH (embedded default) or postgresql://USER@HOST:PORT/DB",
        )
    if "://" not in artifacts or artifacts.startswith("file://"):
        Path(artifacts.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
    # MLflow 3's job runner (GenAI jobs) starts a dozen huey workers: on a 2-core box that
    # doubles start-up time and idle memory for features tracking does not use.
    env: dict[str, str] = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": environ.get("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")}
    if auth:
        env.update(_auth_env(config, environ, auth_config, backend))
    if workers is None:
        # SQLite serialises writers; more workers only add "database is locked" retries.
        workers = 1 if backend.startswith("sqlite") else 4
    return ServerSpec(
        host=host or config.tracking.host,
        port=port or config.tracking.port,
        backend_store_uri=backend,
        artifacts_destination=artifacts,
        workers=workers,
        auth=auth,
        auth_config=env.get("MLFLOW_AUTH_CONFIG_PATH"),
        allowed_hosts=allowed_hosts,
        env=env,
    )


def check_postgres(uri: str, timeout: int = 5) -> None:
    """Connect once, so a wrong URI fails here with its name, not deep inside MLflow."""
    import psycopg2

    dsn = uri.replace("postgresql+psycopg2://", "postgresql://", 1)
    try:
        psycopg2.connect(dsn, connect_timeout=timeout).close()
    except psycopg2.Error as exc:
        raise ConfigError(
            f"cannot connect to the PostgreSQL backend store {redact_uri(uri)} "
            f"({str(exc).strip().splitlines()[0]})",
            where="--backend-store-uri",
            fix="Start the database or correct host, port, user and database name",
        ) from None


def _auth_env(config, environ: dict[str, str], auth_config: str | None, backend: str) -> dict[str, str]:
    """Environment for MLflow's basic-auth app: admin from env, our ini, a secret key file."""
    env: dict[str, str] = {}
    user = environ.get("MLFLOW_AUTH_ADMIN_USERNAME") or environ.get("MLFLOW_TRACKING_USERNAME")
    password = environ.get("MLFLOW_AUTH_ADMIN_PASSWORD") or environ.get("MLFLOW_TRACKING_PASSWORD")
    if auth_config:
        if not Path(auth_config).is_file():
            raise ConfigError("the auth config file does not exist", where=auth_config)
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(Path(auth_config).resolve())
    else:
        if not user or not password:
            raise ConfigError(
                "--auth needs the admin credentials of the tracking server",
                where="environment",
                fix="Set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (at least "
                f"{MIN_ADMIN_PASSWORD} characters), or pass --auth-config FILE (MLflow basic_auth.ini)",
            )
        if len(password) < MIN_ADMIN_PASSWORD or password == "password1234":
            raise ConfigError(
                f"the admin password must have at least {MIN_ADMIN_PASSWORD} characters and not be MLflow's old default",
                where="MLFLOW_TRACKING_PASSWORD",
                fix="Choose a long random password (e.g. `openssl rand -base64 24`)",
            )
        folder = Path(config.home) / "mlflow"
        folder.mkdir(parents=True, exist_ok=True)
        ini = folder / "basic_auth.ini"
        auth_db = f"sqlite:///{folder / 'auth.db'}" if backend.startswith("sqlite") else backend
        ini.write_text(
            "[mlflow]\n"
            "default_permission = NO_PERMISSIONS\n"
            f"database_uri = {auth_db}\n"
            f"admin_username = {user}\n"
            # basic auth; registered models and versions made by the admin alone (models_auth)
            "authorization_function = idsp.service.models_auth:authenticate\n",
            encoding="utf-8",
        )
        os.chmod(ini, 0o600)
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(ini)
        env["MLFLOW_AUTH_ADMIN_USERNAME"] = user
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = password
    env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = environ.get("MLFLOW_FLASK_SERVER_SECRET_KEY") or _secret_key(config)
    return env


def _secret_key(config) -> str:
    """The CSRF secret of the auth app: a 0600 file, generated on first start."""
    path = config.path("secrets_dir") / "mlflow-flask-secret"
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    value = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def start(spec: ServerSpec, *, log: Path | None = None) -> subprocess.Popen:
    """Start the server in a new process group (session); the caller stops it with ``stop``."""
    env = {**os.environ, **spec.env}
    out = open(log, "ab") if log else None  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        spec.command(), env=env, start_new_session=True, stdout=out, stderr=subprocess.STDOUT if out else None
    )


def stop(proc: subprocess.Popen, grace: float = STOP_GRACE_SECONDS) -> int:
    """SIGTERM the whole group, then SIGKILL what is left after ``grace`` seconds."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return proc.wait()
    _signal_group(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if proc.poll() is not None and not _group_alive(pgid):
            break
        time.sleep(0.1)
    if _group_alive(pgid):
        _signal_group(pgid, signal.SIGKILL)
    try:
        return proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        return -9


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def wait_until_up(url: str, proc: subprocess.Popen | None = None, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise UserError(
                f"the tracking server exited with code {proc.returncode} before it answered at {url}",
                fix="Read its output above; a port in use or a bad backend URI are the usual causes",
            )
        if healthy(url):
            return
        time.sleep(0.25)
    raise UserError(f"the tracking server did not answer at {url} within {timeout:.0f} s")


def serve(spec: ServerSpec, *, on_ready=None) -> int:
    """Run in the foreground until SIGTERM/SIGINT, then stop the whole server group."""
    proc = start(spec)
    stopping = {"flag": False}

    def _stop(signum, _frame):
        stopping["flag"] = True

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        ready = False
        while proc.poll() is None and not stopping["flag"]:
            if not ready and healthy(spec.url, timeout=1.0):
                ready = True
                if on_ready:
                    on_ready(spec)
            time.sleep(0.25)
        code = stop(proc)
        return 0 if stopping["flag"] else (code or 1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
