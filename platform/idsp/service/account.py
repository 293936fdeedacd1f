"""The service's own OS account and state folder, made by ``idsp hub up`` before the hub
starts the service.

Rule: the account is ``<prefix>svc-idsp``: it has a hyphen, which hub user names never have,
so no hub user's OS account can ever be it. It is a system account without a password or a
login shell. Its state folder is owned by it, mode 0700, and reachable (search bit) through
every folder above it, or ``hub up`` stops with the folders named. The case index is
handed to the service's group, mode 0640: users no longer read every case's id and title.
The MLflow user key reaches the service as a file in that folder, its own, mode 0400 (never
through its environment, which ``/proc/<pid>/environ`` keeps for the process's life).
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from idsp.config import PlatformConfig
from idsp.errors import UserError
from idsp.hub import accounts
from idsp.service import SERVICE_NAME

NOLOGIN = "/usr/sbin/nologin"
INDEX_MODE = 0o640
MLFLOW_KEY_FILE = "mlflow-user-key"


def account_name(prefix: str) -> str:
    accounts.check_prefix(prefix)
    return f"{prefix}svc-{SERVICE_NAME}"


def state_dir(cfg: PlatformConfig) -> Path:
    return cfg.home / "service"


def mlflow_key_file(cfg: PlatformConfig) -> Path:
    return state_dir(cfg) / MLFLOW_KEY_FILE


def hand_mlflow_key(cfg: PlatformConfig, key: str, entry: pwd.struct_passwd) -> Path:
    """Write the MLflow user key for the service: its own file, mode 0400, replaced whole."""
    return hand_secret(mlflow_key_file(cfg), key, entry)


def hand_secret(path: Path, secret: str, entry: pwd.struct_passwd) -> Path:
    """Write ``secret`` into ``path`` (in the service's own folder) for the service account:
    mode 0400, replaced whole. Owner and mode are set on the new file before it gets its name
    (the folder is the service's, so nothing here follows a name the service could have
    pointed elsewhere: a link planted at ``path`` is replaced, never written through)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
    try:
        os.fchown(fd, entry.pw_uid, entry.pw_gid)
        os.fchmod(fd, 0o400)
        os.write(fd, (secret + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def ensure_account(name: str, home: Path) -> pwd.struct_passwd:
    with accounts.OS_LOCK:  # spawns add accounts from worker threads
        if not accounts.account_exists(name):
            done = subprocess.run(
                ["useradd", "--system", "--no-create-home", "--home-dir", str(home),
                 "--shell", NOLOGIN if Path(NOLOGIN).exists() else "/bin/false",
                 "--user-group", "--comment", "IDSP platform service", name],
                capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode != 0:
                raise UserError(
                    f"could not create the service account {name}: {done.stderr.strip()}",
                    fix="Run `idsp hub up` as root on a system with useradd",
                )
    return pwd.getpwnam(name)


def _open_path(cfg: PlatformConfig, folder: Path, echo) -> None:
    """The service account is in no group of the folders above its state: it needs o+x there.
    Added (search only, not read) where ``hub.open_interpreter_path`` allows it, as for
    Python and the case folders; else ``hub up`` stops with the folders named."""
    closed = [p for p in reversed(folder.parents) if p.is_dir() and not p.stat().st_mode & 0o001]
    accounts.open_search_bits(
        closed, cfg.hub.open_interpreter_path, who=f"the platform service (state folder {folder})",
        fix="Add the search bit (`chmod o+x`, not read) to those folders, set hub.open_interpreter_path: true, "
        "or put paths.home below a folder others can enter",
        echo=echo,
    )

def guard_index(index: Path, gid: int) -> None:
    """Root and the service read the case index, no one else.

    ``idsp case new`` replaces the file atomically; the replacement keeps the mode (0640) but
    belongs to root's group, so the service cannot read it until the next ``hub up`` (it says
    so): closed, never open to all."""
    if not index.is_file() or index.is_symlink():
        return
    os.chown(index, 0, gid)
    os.chmod(index, INDEX_MODE)


def prepare(cfg: PlatformConfig, case_index: Path, echo=print) -> pwd.struct_passwd:
    """Account, private state folder, guarded case index; returns the account."""
    folder = state_dir(cfg)
    entry = ensure_account(account_name(cfg.hub.user_prefix), folder)
    folder.mkdir(parents=True, exist_ok=True)
    if folder.is_symlink() or not folder.is_dir():
        raise UserError(
            "the platform service's state folder is not a plain folder", where=str(folder)
        )
    info = folder.stat()
    if info.st_uid not in (0, entry.pw_uid):
        # someone else's folder: handing it to the service could hand over their files
        raise UserError(
            f"the platform service's state folder belongs to uid {info.st_uid}",
            where=str(folder),
            fix="Move it away; `idsp hub up` makes a new one",
        )
    os.chown(folder, entry.pw_uid, entry.pw_gid)
    os.chmod(folder, 0o700)
    _open_path(cfg, folder, echo)
    guard_index(case_index, entry.pw_gid)
    return entry
