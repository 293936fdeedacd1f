"""The hub's MLflow login, with one addition: only the MLflow admin (the platform service)
creates registered models and model versions.

Rule: MLflow's basic-auth app lets every signed-in user create a registered model (and gives
its maker MANAGE on it), and anyone with READ on a run create a version from it: no
permission setting forbids that. This function is the server's ``authorization_function``
(``basic_auth.ini``): it signs the user in as MLflow does, then answers 403 to anyone but an
admin who asks to create a registered model or a model version (REST and the web UI's
``ajax-api``, every API version), with the way to do it through the platform. It runs inside
the MLflow server process and imports nothing of the platform.
"""

from __future__ import annotations

import json
import re

CREATING = re.compile(r"/(?:ajax-)?api/[0-9.]+/mlflow/(?:registered-models|model-versions)/create/?$")
MESSAGE = (
    "Only the platform registers models: register from an official run for use with "
    "`idsp tracking register RUN_ID NAME` (the platform service checks its audit log). "
    "Alleen het platform registreert modellen."
)


def authenticate() -> object:
    from flask import Response, request
    from mlflow.server import auth

    found = auth.authenticate_request_basic_auth()
    if isinstance(found, Response) or not CREATING.search(request.path):
        return found
    user = auth.store.get_user(found.username or "")
    if user.is_admin:
        return found
    body = json.dumps({"error_code": "PERMISSION_DENIED", "message": MESSAGE})
    return Response(body, status=403, mimetype="application/json")
