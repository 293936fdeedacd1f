"""The hub's own home page (``/hub/home``): a link to the platform's start page, and for hub
admins the number of sign-ups that wait for approval.

Rule: only template settings for the configurer (a template folder and template variables);
the count is read from the running hub's own authenticator (NativeAuthenticator's table in
the hub database, which only the hub reads), for admins only and in one query, never for
other users. The platform service cannot read the hub database, so its start page links to
``/hub/authorize`` without a count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).resolve().parent / "templates"


def pending_signups(authenticator: Any) -> int | None:
    """How many sign-ups wait for an admin's approval; None for an authenticator without
    sign-ups (OIDC, dummy)."""
    from nativeauthenticator import NativeAuthenticator
    from nativeauthenticator.orm import UserInfo

    if not isinstance(authenticator, NativeAuthenticator):
        return None
    # NativeAuthenticator's own count asks the database twice per user; this is one query.
    approved = set(authenticator.admin_users) | set(authenticator.allowed_users or ())
    infos = authenticator.db.query(UserInfo.username, UserInfo.is_authorized).all()
    return sum(1 for name, ok in infos if not ok and name not in approved)


def _pending_for(user: Any) -> int | None:
    if user is None or not getattr(user, "admin", False):
        return None
    from jupyterhub.app import JupyterHub

    if not JupyterHub.initialized():
        return None
    return pending_signups(JupyterHub.instance().authenticator)


def template_vars(base_url: str, start_prefix: str) -> dict[str, Any]:
    """``c.JupyterHub.template_vars``: the start page's address and, per request, the
    pending sign-ups (JupyterHub calls a callable value with the signed-in user)."""
    return {
        "idsp_start_url": base_url.rstrip("/") + start_prefix,
        "idsp_pending_signups": _pending_for,
    }
