"""Where the hub keeps its state and secrets, and how secret files are made.

Rule: every secret is a file of mode 0600 in a 0700 folder, written atomically (temporary
file, fsync, rename) and generated on first start only; a secret file that others can read
is an error, never silently fixed, because it may already have leaked.
"""

from __future__ import annotations

import os
import secrets
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from idsp.config import PlatformConfig
from idsp.errors import UserError
from idsp.files import atomic_write


@dataclass(frozen=True)
class HubPaths:
    state_dir: Path  # hub database, generated jupyterhub_config.py, pid files (0700)
    secrets_dir: Path  # 0700, every file 0600
    cases_root: Path
    case_index: Path
    mlflow_dir: Path

    @classmethod
    def of(cls, cfg: PlatformConfig) -> HubPaths:
        return cls(
            state_dir=cfg.home / "hub",
            secrets_dir=cfg.path("secrets_dir"),
            cases_root=cfg.path("cases_root"),
            case_index=cfg.path("case_index"),
            mlflow_dir=cfg.home / "mlflow",
        )

    @property
    def db_file(self) -> Path:
        return self.state_dir / "jupyterhub.sqlite"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "jupyterhub_config.py"

    @property
    def cookie_secret(self) -> Path:
        return self.secrets_dir / "jupyterhub_cookie_secret"

    @property
    def proxy_token(self) -> Path:
        return self.secrets_dir / "proxy_auth_token"

    @property
    def crypt_key(self) -> Path:
        return self.secrets_dir / "jupyterhub_crypt_key"

    @property
    def admin_password(self) -> Path:
        return self.secrets_dir / "admin-password"

    @property
    def mlflow_admin_password(self) -> Path:
        return self.secrets_dir / "mlflow-admin-password"

    @property
    def mlflow_user_key(self) -> Path:
        """HMAC key from which each hub user's MLflow password is derived."""
        return self.secrets_dir / "mlflow-user-key"

    @property
    def mlflow_experiments(self) -> Path:
        """Which MLflow experiment the hub made for each case (root's, in the 0700 state folder)."""
        return self.state_dir / "mlflow-experiments.json"

    @property
    def mlflow_auth_ini(self) -> Path:
        return self.secrets_dir / "mlflow-basic-auth.ini"


def private_dir(path: Path, mode: int = 0o700) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    return path


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600."""
    private_dir(path.parent)
    atomic_write(path, text, mode=0o600)


def check_private(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise UserError(
            f"the secret file has mode {mode:04o}, so other accounts may have read it",
            where=str(path),
            fix="Treat it as leaked: delete it (a new one is generated on the next start) "
            "or, if you must keep it, `chmod 600` it",
        )


def read_secret(path: Path) -> str:
    check_private(path)
    return path.read_text(encoding="utf-8").strip()


def ensure_secret(path: Path, nbytes: int = 32) -> tuple[str, bool]:
    """Return the secret in ``path``, generating it (hex) on first use; second item: created."""
    if path.exists():
        return read_secret(path), False
    value = secrets.token_hex(nbytes)
    write_private(path, value + "\n")
    return value, True


def generate_password() -> str:
    # 24 url-safe characters: ~143 bits, and never in a common-password list.
    return secrets.token_urlsafe(18)


def venv_bin() -> Path:
    return Path(sys.executable).parent
