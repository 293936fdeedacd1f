"""Who is calling the platform service: the hub's answer, asked without blocking.

Rule: the identity comes from the hub only (``HubOAuth``: the browser's cookie or a server's
token); nothing in the request body or headers besides those decides it.
"""

from __future__ import annotations

from typing import Any

from jupyterhub.services.auth import UserNotAllowed


async def resolve_user(handler: Any) -> dict[str, Any] | None:
    """Ask the hub who calls ``handler`` (a ``HubOAuthenticated`` tornado handler) and leave the
    answer where ``HubAuthenticated.get_current_user`` looks first: its own lookup would ask
    the hub synchronously and block the loop. Returns the hub's model of a user the service
    refuses (so the handler can say why), else None."""
    model = await handler.hub_auth.get_user(handler, sync=False)
    handler._hub_auth_user_cache = None
    if model:
        try:
            handler._hub_auth_user_cache = handler.check_hub_user(model)
        except UserNotAllowed:
            return model
    return None
