"""Who may enter a case folder on the hub, applied at once: POSIX ACLs, links, git's trust.

Rule: a member is one named ACL entry (``u:<os account>:rwX``, default entries on folders)
over the case folder and its DVC remote folder, set and removed by file descriptor
(:mod:`idsp.hub.acl`); no group gives access to a case made through the service, so taking
the entry away takes the access away from running processes too. The platform service's
account reads every case (``r-X``). Only folders directly in the platform's cases folder (and
remote folder) are ever touched, each opened without following links and owned by root:
a path from a request or from the registry is never used as given.
"""

from __future__ import annotations

import logging
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from idsp.case_file import SLUG_RE
from idsp.hub import accounts, acl, case_links

log = logging.getLogger("idsp.hub.case_access")
MEMBER = "rwX"
READER = "rX"


class NotACase(ValueError):
    """The case id or its folder is not one the platform may change."""


@dataclass(frozen=True)
class CaseFolders:
    cases_root: Path
    remote_root: Path | None  # local DVC remote root, or None for a URL remote
    git_dir: Path  # the per-account git configs (case_links.write_git_config)
    user_prefix: str
    service_uid: int | None = None

    def folder(self, case_id: str) -> Path:
        """``<cases_root>/<case_id>``, checked: a real folder owned by root."""
        if not isinstance(case_id, str) or not SLUG_RE.match(case_id):
            raise NotACase(f"{case_id!r} is not a case id (lower-case letters, digits, dashes)")
        path = self.cases_root / case_id
        _check_root_folder(path)
        return path

    def remote(self, case_id: str) -> Path | None:
        if self.remote_root is None:
            return None
        path = self.remote_root / case_id
        if not os.path.lexists(path):
            return None
        _check_root_folder(path)
        return path

    def account(self, user: str) -> pwd.struct_passwd | None:
        """The OS account of hub user ``user`` (None until their first server start)."""
        name = accounts.os_user_name(self.user_prefix, user)  # ValueError for a bad name
        try:
            return pwd.getpwnam(name)
        except KeyError:
            return None

    def _trees(self, case_id: str) -> list[Path]:
        remote = self.remote(case_id)
        return [self.folder(case_id), *([remote] if remote else [])]

    def set_access(self, case_id: str, grants: dict[int, str], revoke: tuple[int, ...] = ()) -> int:
        return sum(acl.change_tree(tree, grants, revoke) for tree in self._trees(case_id))

    def grant(self, case_id: str, account: pwd.struct_passwd) -> int:
        grants = {account.pw_uid: MEMBER}
        if self.service_uid is not None:
            grants[self.service_uid] = READER
        return self.set_access(case_id, grants)

    def revoke(self, case_id: str, account: pwd.struct_passwd) -> int:
        return self.set_access(case_id, {}, (account.pw_uid,))

    def has_access(self, case_id: str, uid: int) -> bool:
        return uid in acl.named_users(self.folder(case_id))

    def sync_user(self, user: str, cases: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Make the account's access, ``~/cases`` links and git config match ``cases`` (the
        registry): the cases it is in get its ACL entry and a link, the others lose both."""
        account = self.account(user)
        if account is None:
            return {"account": False}
        mine: dict[str, Path] = {}
        changed: list[str] = []
        for case_id, case in sorted(cases.items()):
            member = user in (case.get("owners") or []) or user in (case.get("members") or [])
            try:
                has = self.has_access(case_id, account.pw_uid)
            except (NotACase, OSError):
                continue  # not a folder the service manages (an old case elsewhere)
            if member:
                mine[case_id] = self.cases_root / case_id
                if not has:
                    self.grant(case_id, account)
                    changed.append(f"+{case_id}")
            elif has:
                self.revoke(case_id, account)
                changed.append(f"-{case_id}")
        links = _links(account, self.cases_root, mine)
        case_links.write_git_config(self.git_dir, account, list(mine.values()), user)
        return {"account": True, "changed": changed, "links": links}


def _links(account: pwd.struct_passwd, cases_root: Path, mine: dict[str, Path]) -> dict[str, Any]:
    try:
        return case_links.sync_links(account, cases_root, mine)
    except (case_links.NotSafe, OSError) as exc:
        # the user's own home is in a shape we do not touch: access works, the links wait
        log.warning("no ~/cases links for %s: %s", account.pw_name, exc)
        return {"error": str(exc)}


def _check_root_folder(path: Path) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise NotACase(f"there is no case folder {path}") from None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
        raise NotACase(f"{path} is not a case folder made by the platform (a root-owned folder)")
