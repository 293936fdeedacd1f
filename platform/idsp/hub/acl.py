"""POSIX ACLs on a case tree, set by file descriptor: who besides the owner may read or write.

Rule: every change is made on a file or folder opened with ``O_NOFOLLOW`` below a folder
opened the same way (``os.fwalk`` with ``follow_symlinks=False``), and written with
``fsetxattr`` on that open descriptor, so a member who swaps a folder for a symbolic link
while the walk runs cannot point it at anything outside the case. Links, sockets, fifos and
devices are left alone. The mask is recomputed after each change (as ``setfacl`` does), so a
named entry grants what it says; "other" is always cleared: a case is never readable by
accounts that are not named. The Debian package ``acl`` (getfacl/setfacl) is not needed for
this, only for looking (``getfacl -p``).
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from collections.abc import Iterable
from pathlib import Path

ACCESS = "system.posix_acl_access"
DEFAULT = "system.posix_acl_default"
_VERSION = 2
_HEADER = struct.Struct("<I")
_ENTRY = struct.Struct("<HHI")
USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
_NO_ID = 0xFFFFFFFF
_GROUP_CLASS = (USER, GROUP_OBJ, GROUP)

Acl = dict[tuple[int, int], int]  # (tag, id) -> rwx bits


def decode(raw: bytes) -> Acl:
    (version,) = _HEADER.unpack_from(raw)
    if version != _VERSION:
        raise ValueError(f"unknown POSIX ACL version {version}")
    out: Acl = {}
    for offset in range(_HEADER.size, len(raw), _ENTRY.size):
        tag, perm, ident = _ENTRY.unpack_from(raw, offset)
        out[(tag, ident if tag in (USER, GROUP) else _NO_ID)] = perm
    return out


def encode(acl: Acl) -> bytes:
    entries = sorted(acl.items())  # the kernel wants them by tag, then id
    return _HEADER.pack(_VERSION) + b"".join(_ENTRY.pack(t, p, i) for (t, i), p in entries)


def _from_mode(mode: int) -> Acl:
    return {
        (USER_OBJ, _NO_ID): (mode >> 6) & 7,
        (GROUP_OBJ, _NO_ID): (mode >> 3) & 7,
        (OTHER, _NO_ID): mode & 7,
    }


def _read(fd: int, name: str, mode: int) -> Acl | None:
    try:
        return decode(os.getxattr(fd, name))
    except OSError as exc:
        if exc.errno in (errno.ENODATA, errno.ENOENT):
            return _from_mode(mode) if name == ACCESS else None
        raise


def _with_mask(acl: Acl) -> Acl:
    acl = {k: v for k, v in acl.items() if k[0] != MASK}
    acl[(OTHER, _NO_ID)] = 0
    if any(tag in (USER, GROUP) for tag, _ in acl):
        bits = 0
        for (tag, _), perm in acl.items():
            if tag in _GROUP_CLASS:
                bits |= perm
        acl[(MASK, _NO_ID)] = bits
    return acl


def _perm(wanted: str, is_dir: bool, mode: int) -> int:
    bits = (4 if "r" in wanted else 0) | (2 if "w" in wanted else 0)
    if "X" in wanted and (is_dir or mode & 0o111):
        bits |= 1
    return bits


def change_fd(fd: int, grants: dict[int, str], revoke: Iterable[int] = ()) -> None:
    """Give each uid in ``grants`` its permissions (``"rwX"``, ``"rX"``) on the open file or
    folder ``fd`` (folders: as default ACL too, so new files inherit it); take every entry
    of the uids in ``revoke`` away; clear "other"."""
    info = os.fstat(fd)
    is_dir = stat.S_ISDIR(info.st_mode)
    gone = set(revoke)
    names = (ACCESS, DEFAULT) if is_dir else (ACCESS,)
    for name in names:
        acl = _read(fd, name, info.st_mode)
        if acl is None:  # a folder's first default ACL starts from its access ACL
            base = _read(fd, ACCESS, info.st_mode) or _from_mode(info.st_mode)
            acl = {k: v for k, v in base.items() if k[0] in (USER_OBJ, GROUP_OBJ, OTHER)}
        acl = {k: v for k, v in acl.items() if not (k[0] == USER and k[1] in gone)}
        for uid, wanted in grants.items():
            acl[(USER, uid)] = _perm(wanted, True if name == DEFAULT else is_dir, info.st_mode)
        os.setxattr(fd, name, encode(_with_mask(acl)))


def change_tree(root: Path, grants: dict[int, str], revoke: Iterable[int] = ()) -> int:
    """``change_fd`` on ``root`` and everything below it, never following a link; returns
    how many entries were changed. ``root`` itself must be a real folder."""
    revoke = tuple(revoke)
    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        change_fd(top, grants, revoke)
    finally:
        os.close(top)
    count = 1
    for _root, dirs, files, dir_fd in os.fwalk(root, follow_symlinks=False):
        for name in dirs + files:
            count += _change_entry(dir_fd, name, grants, revoke)
    return count


def _change_entry(dir_fd: int, name: str, grants: dict[int, str], revoke: tuple[int, ...]) -> int:
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return 0
    if not (stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode)):
        return 0  # links, sockets, fifos, devices: left alone
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:  # swapped for a link or removed meanwhile
        return 0
    try:
        now = os.fstat(fd)
        if (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
            return 0
        change_fd(fd, grants, revoke)
        return 1
    finally:
        os.close(fd)


def named_users(path: Path) -> dict[int, int]:
    """The named user entries of ``path``'s access ACL (uid -> bits), not following a link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        acl = _read(fd, ACCESS, os.fstat(fd).st_mode) or {}
    finally:
        os.close(fd)
    return {ident: perm for (tag, ident), perm in acl.items() if tag == USER}
