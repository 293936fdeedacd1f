"""Cases and members from inside a user server, through the platform service; and off the hub.

Rule: on the hub the service decides (its registry, its project-lead group, its root agent)
and its refusal is the answer: 403 and 409 become ``Refused`` (exit 1), a malformed request
``UserError`` (exit 2), never a traceback. Off the hub (one person on a laptop) the same
questions are answered in-process from the local case index, and this mode trusts its one
user: nothing it records is official on a hub.
"""

from __future__ import annotations

from typing import Any

from idsp.errors import UserError
from idsp.service.link import HubService

MAKE_TIMEOUT = 300.0  # rendering, git, DVC and hooks as root take seconds, MLflow a few more
LOCAL_NOTE = (
    "in-process mode: no hub here, so this mode trusts its one user; the members are written "
    "to the local case index only"
)


def make_case(service: HubService, case_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return service._call(
        "POST", "api/cases", json={"case_id": case_id, "data": data}, timeout=MAKE_TIMEOUT
    )


def members(service: HubService, case_id: str) -> dict[str, Any]:
    return service._call("GET", f"api/cases/{case_id}/members")


def add_member(service: HubService, case_id: str, user: str) -> dict[str, Any]:
    return service._call("POST", f"api/cases/{case_id}/members", json={"user": user}, timeout=60.0)


def remove_member(service: HubService, case_id: str, user: str) -> dict[str, Any]:
    return service._call("DELETE", f"api/cases/{case_id}/members/{user}", timeout=60.0)


def local_members(
    case_id: str, change: str | None = None, user: str = "", cfg=None
) -> dict[str, Any]:
    """Off the hub: the ``members`` of the case's entry in the local case index, changed
    (``change``: "add" or "remove") or only read."""
    from idsp.case_index import read_index, record_in_index

    entries = [e for e in read_index(cfg) if e.get("id") == case_id]
    if not entries:
        raise UserError(f"there is no case {case_id!r} in the local case index",
                        fix="`idsp case status` lists the cases here")  # fmt: skip
    entry = dict(entries[0])
    people = sorted(set(entry.get("members") or []))
    if change == "add" and user not in people:
        people = sorted({*people, user})
    elif change == "remove":
        if user not in people:
            raise UserError(f"{user!r} is not a member of case {case_id!r}")
        people.remove(user)
    if change:
        entry["members"] = people
        record_in_index(entry, cfg)
    return {
        "case_id": case_id,
        "owners": [],
        "members": people,
        "mode": "in-process",
        "note": LOCAL_NOTE,
    }
