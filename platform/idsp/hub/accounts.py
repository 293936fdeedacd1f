"""Unprivileged OS accounts and groups for hub users, and shared case folders.

Rule: one hub user is one OS account ``<prefix><name>`` with a private home (0700); hub
groups (inspectorates, cases) are OS groups ``<prefix>grp-<group>``; a user's OS groups are
set to exactly their hub groups at every spawn, so removing someone from a hub group takes
their folder access away at their next start. Only names matching ``USERNAME_RE`` ever reach
``useradd``: the name check is the security boundary, not the shell.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import re
import stat
import subprocess
import threading
from pathlib import Path

from idsp.errors import UserError

# Hub user names: lower-case letters, digits, dot and underscore, no hyphen. The hyphen is
# reserved so that "<prefix><user>" can never equal "<prefix>grp-<group>".
USERNAME_RE = re.compile(r"^[a-z][a-z0-9._]{0,23}$")
USERNAME_PATTERN = USERNAME_RE.pattern
PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{0,11}-$")
_GROUP_CHARS = re.compile(r"[^a-z0-9-]+")
MAX_NAME = 32  # Linux account and group names
# Spawns prepare accounts in worker threads: one at a time, so "exists? else add" holds.
OS_LOCK = threading.Lock()


def check_prefix(prefix: str) -> None:
    if not PREFIX_RE.match(prefix):
        raise UserError(
            f"hub.user_prefix {prefix!r} is not a safe OS account prefix",
            fix="Use 1-12 lower-case letters or digits followed by one hyphen, e.g. 'idsp-'",
        )


def os_user_name(prefix: str, hub_name: str) -> str:
    if not USERNAME_RE.match(hub_name):
        raise ValueError(f"hub user name {hub_name!r} cannot be an OS account name")
    return prefix + hub_name


def os_group_name(prefix: str, hub_group: str) -> str:
    slug = _GROUP_CHARS.sub("-", hub_group.lower()).strip("-") or "group"
    name = f"{prefix}grp-{slug}"
    if len(name) > MAX_NAME:
        digest = hashlib.sha256(hub_group.encode()).hexdigest()[:8]
        name = name[: MAX_NAME - 9] + "-" + digest
    return name


def _run(*cmd: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")


def account_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def ensure_group(name: str) -> int:
    if not group_exists(name):
        _run("groupadd", name)
    return grp.getgrnam(name).gr_gid


def ensure_account(name: str, homes_root: Path) -> pwd.struct_passwd:
    """Create the account (no password, no login shell password) with a 0700 home."""
    homes_root.mkdir(parents=True, exist_ok=True)
    if not account_exists(name):
        _run(
            "useradd",
            "--create-home",
            "--home-dir",
            str(homes_root / name),
            "--shell",
            "/bin/bash",
            "--user-group",
            "--comment",
            "IDSP hub user",
            "-K",
            "UMASK=0077",
            name,
        )
    entry = pwd.getpwnam(name)
    home = Path(entry.pw_dir)
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, entry.pw_uid, entry.pw_gid)
    os.chmod(home, 0o700)
    return entry


def set_groups(name: str, groups: list[str]) -> None:
    """Make ``groups`` exactly the supplementary groups of the account."""
    for group in groups:
        ensure_group(group)
    if set(groups) == supplementary_groups(name):
        return  # usermod rewrites /etc/group and /etc/gshadow under a lock: skip a no-op
    _run("usermod", "-G", ",".join(groups), name)


def supplementary_groups(name: str) -> set[str]:
    return {g.gr_name for g in grp.getgrall() if name in g.gr_mem}


def share_folder(folder: Path, group: str) -> None:
    """Give ``group`` read/write on ``folder`` and everything in it; setgid on folders so
    new files stay in the group. The first time (the folder not yet the group's, 2770) the
    whole tree is walked, so the files the admin made with ``idsp case new`` (the git
    repository included) become the members'; later, new files inherit the group and user
    servers write them group-writable (umask 007), so the walk is not repeated at each spawn.
    The walk goes by file descriptors and never follows a symbolic link, so a link (or a
    folder swapped for one while it runs) cannot point it at anything outside the case."""
    gid = ensure_group(group)
    folder.mkdir(parents=True, exist_ok=True)
    st = folder.stat()
    if st.st_gid != gid or stat.S_IMODE(st.st_mode) != 0o2770:
        for _root, dirs, files, dir_fd in os.fwalk(folder, follow_symlinks=False):
            for name in dirs + files:
                _share_entry(dir_fd, name, gid)
        if (folder / ".git").is_dir():
            # git writes its objects group-writable from now on, whoever commits
            done = subprocess.run(
                ["git", "-c", f"safe.directory={folder}", "-C", str(folder), "config", "core.sharedRepository", "group"],
                capture_output=True, text=True, check=False,
            )
            if done.returncode != 0:
                raise UserError(f"could not share the git repository of {folder}: {done.stderr.strip()}",
                                where=str(folder), fix="Check the repository with `git -C FOLDER status`")
    os.chown(folder, 0, gid)
    os.chmod(folder, 0o2770)


def share_case(case, group: str, remote_root: Path | None) -> None:
    """A case's folder, and its DVC remote folder below a local ``remote_root``, for ``group``."""
    share_folder(case.path, group)
    if remote_root is not None:
        share_folder(remote_root / case.id, group)


def _share_entry(dir_fd: int, name: str, gid: int) -> None:
    """Group read/write on one folder or regular file, opened without following links."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
        return  # links, sockets, fifos, devices: left alone
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:  # swapped for a link or removed meanwhile
        return
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
            return
        os.fchown(fd, now.st_uid, gid)
        mode = stat.S_IMODE(now.st_mode)
        if stat.S_ISDIR(now.st_mode):
            os.fchmod(fd, (mode | 0o2070) & ~0o007)
        else:
            os.fchmod(fd, (mode | 0o060 | (0o010 if mode & 0o100 else 0)) & ~0o007)
    finally:
        os.close(fd)


def delete_account(name: str) -> None:
    if account_exists(name):
        subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
        _run("userdel", "--remove", name)


def delete_group(name: str) -> None:
    if group_exists(name):
        _run("groupdel", name)


def accounts_with_prefix(prefix: str) -> list[str]:
    return [p.pw_name for p in pwd.getpwall() if p.pw_name.startswith(prefix)]


def groups_with_prefix(prefix: str) -> list[str]:
    return [g.gr_name for g in grp.getgrall() if g.gr_name.startswith(prefix)]


def open_search_bits(closed: list[Path], allowed: bool, *, who: str, fix: str, echo) -> None:
    """Add the search bit (o+x, never read) to ``closed`` folders so ``who`` can pass them,
    where the platform config allows it (``hub.open_interpreter_path``); else stop naming them."""
    if not closed:
        return
    names = ", ".join(str(p) for p in closed)
    if not allowed:
        raise UserError(f"{who} could not pass {names}: other accounts cannot enter them", fix=fix)
    for folder in closed:
        os.chmod(folder, folder.stat().st_mode | 0o001)
    echo(f"note: added the search bit (o+x, not read) to {names} so {who} can pass them")
