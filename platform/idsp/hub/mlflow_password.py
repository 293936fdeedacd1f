"""Each hub user's MLflow password, derived from the platform's MLflow user key.

Rule: the standard library only, nothing else of idsp. The Kubernetes hub pod runs the
chart's own image, without idsp; the rendered values mount this one file there
(``hub.extraFiles``), so the single-server hub and the in-pod hook derive the same password
from the same code.
"""

from __future__ import annotations

import hashlib
import hmac


def user_password(key: str, username: str) -> str:
    """The MLflow password of ``username``: HMAC-SHA256 of ``mlflow:<name>`` under ``key``."""
    return hmac.new(key.encode(), f"mlflow:{username}".encode(), hashlib.sha256).hexdigest()
