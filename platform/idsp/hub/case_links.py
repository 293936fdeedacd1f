"""What a hub user's account sees of their cases: ``~/cases/<id>`` links and git's trust.

Rule: the home belongs to the user, so root never follows anything in it: the home and its
``cases`` folder are opened with ``O_NOFOLLOW`` and checked to be the user's own folders,
and every link is made, read and removed relative to that open folder (``*at`` calls). Only
links that point into the platform's cases folder are ever removed; a file or folder the
user made there is left alone. Git's list of safe case folders is a root-written file per
account (``GIT_CONFIG_SYSTEM`` of their server, which includes ``/etc/gitconfig``), so a
member added while their server runs can commit at once, without a respawn.
"""

from __future__ import annotations

import logging
import os
import pwd
import stat
from pathlib import Path

from idsp.files import atomic_write

log = logging.getLogger("idsp.hub.case_links")
LINKS = "cases"


class NotSafe(RuntimeError):
    """The home or its cases folder is not the user's own plain folder."""


def _open_own_dir(name: str | Path, uid: int, dir_fd: int | None = None) -> int:
    fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    info = os.fstat(fd)
    if info.st_uid != uid or not stat.S_ISDIR(info.st_mode):
        os.close(fd)
        raise NotSafe(f"{name} is not a folder of uid {uid}")
    return fd


def sync_links(
    account: pwd.struct_passwd, cases_root: Path, wanted: dict[str, Path]
) -> dict[str, list[str]]:
    """Make ``~/cases/<id>`` -> the case folder for each case in ``wanted``, and remove the
    links into ``cases_root`` of cases not in it. Returns {"made": [...], "removed": [...]}."""
    done: dict[str, list[str]] = {"made": [], "removed": [], "left": []}
    home = _open_own_dir(account.pw_dir, account.pw_uid)
    try:
        try:
            os.mkdir(LINKS, 0o700, dir_fd=home)
            os.chown(LINKS, account.pw_uid, account.pw_gid, dir_fd=home, follow_symlinks=False)
        except FileExistsError:
            pass
        links = _open_own_dir(LINKS, account.pw_uid, dir_fd=home)
    finally:
        os.close(home)
    root = str(cases_root).rstrip("/") + "/"
    try:
        for name in os.listdir(links):
            try:
                target = os.readlink(name, dir_fd=links)
            except OSError:
                continue  # not a link: the user's own file or folder
            if target.startswith(root) and name not in wanted:
                os.unlink(name, dir_fd=links)
                done["removed"].append(name)
        for case_id, path in sorted(wanted.items()):
            try:
                if os.readlink(case_id, dir_fd=links) == str(path):
                    continue
                os.unlink(case_id, dir_fd=links)  # a link, but elsewhere: ours to set right
            except FileNotFoundError:
                pass
            except OSError:  # a real file or folder of the user's: never touched
                done["left"].append(case_id)
                continue
            os.symlink(str(path), case_id, dir_fd=links)
            os.chown(case_id, account.pw_uid, account.pw_gid, dir_fd=links, follow_symlinks=False)
            done["made"].append(case_id)
    finally:
        os.close(links)
    return done


# the e-mail domain of each user's git identity (<hub name>@<domain>): .invalid until an admin
# sets a real one (IdspSpawner.git_email_domain)
GIT_EMAIL_DOMAIN = "users.idsp.invalid"


def git_config_path(folder: Path, os_name: str) -> Path:
    return folder / f"{os_name}.gitconfig"


def write_git_config(folder: Path, account: pwd.struct_passwd, case_paths: list[Path], user: str) -> Path:
    """The account's system git config: /etc/gitconfig, who commits (the hub name ``user``,
    as the server's GIT_AUTHOR_* say too, so tools that read `git config user.name` see it),
    and its case folders as safe (the folders belong to root, which git refuses to work in
    unless they are named safe in a protected configuration). Root's, readable by the account
    only (mode 0640, its group)."""
    folder.mkdir(mode=0o711, parents=True, exist_ok=True)
    path = git_config_path(folder, account.pw_name)
    lines = [
        "# Written by the IDSP platform at each server start and member change; edits are lost.",
        "[include]",
        "\tpath = /etc/gitconfig",
        "[user]",
        f"\tname = {user}",
        f"\temail = {user}@{GIT_EMAIL_DOMAIN}",
        "[safe]",
        *(f"\tdirectory = {p}" for p in sorted(map(str, case_paths))),
    ]
    atomic_write(path, "\n".join(lines) + "\n", mode=0o640)
    os.chown(path, 0, account.pw_gid)
    return path
