"""The platform service: the one trusted place on the hub for who you are, which cases exist
and what happened.

Rule: the service decides from what the hub proved (the user name and groups behind a hub
API token or the service's OAuth cookie) and from its own files, never from what a request
says about itself: a body that names another actor is refused. It runs as its own
unprivileged OS account, and its state folder (0700) is out of every user's reach. Without a
hub, :mod:`idsp.service.client` answers in-process and says that this mode trusts its one user.
"""

from __future__ import annotations

from idsp.service.link import PREFIX, SERVICE_NAME

# The scope a hub user (browser login or server token) needs to use the service at all.
ACCESS_SCOPE = f"access:services!service={SERVICE_NAME}"

__all__ = ["ACCESS_SCOPE", "PREFIX", "SERVICE_NAME"]
