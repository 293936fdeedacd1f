"""``python -m idsp.service``: the platform service as the hub starts it.

Rule: it refuses to run as root, with a state folder others can enter, or without the access
scope the hub hands it (that would let every hub identity in). Everything it needs comes from
its command line (set by the platform's configurer) and from the ``JUPYTERHUB_*`` variables
the hub sets; it never reads ``platform.yaml``, ``IDSP_*`` variables or a user's files.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import stat
import sys
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlparse

from idsp.service import PREFIX
from idsp.service.app import Service, make_app
from idsp.service.auditlog import AuditLog
from idsp.service.cases import CaseDirectory
from idsp.service.hubconfig import MLFLOW_KEY_ENV
from idsp.service.mlflow_proxy import MlflowUpstream, SharedCookieHubOAuth
from idsp.service.review_api import all_routes as review_routes

log = logging.getLogger("idsp.service")
AUTH_CACHE_SECONDS = 60  # how long a changed group or revoked scope may take to be seen


def _refuse(message: str) -> NoReturn:
    print(f"idsp service: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m idsp.service")
    parser.add_argument("--state", type=Path, required=True, help="the service's own folder (0700)")
    parser.add_argument("--case-index", type=Path, required=True)
    parser.add_argument("--cases-root", type=Path, required=True)
    parser.add_argument("--mlflow-url", help="the MLflow server to forward <prefix>mlflow/ to")
    parser.add_argument("--mlflow-at", action="append", default=[], help="a further mount point")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="[idsp-service %(levelname)s %(asctime)s] %(message)s"
    )

    if os.geteuid() == 0:
        _refuse("refusing to run as root: the hub starts it as its own account (docs/service.md)")
    info = args.state.stat()
    if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o077:
        _refuse(
            f"{args.state} must be this account's own folder with mode 0700 (`idsp hub up` makes it so)"
        )
    os.umask(0o077)
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", ""))
    port = url.port
    if not port:
        _refuse("JUPYTERHUB_SERVICE_URL is not set: the hub starts this service")
    # The hub hands the MLflow user key in the environment (see hubconfig.MLFLOW_KEY_ENV);
    # taken out of it at once, so nothing this process might start inherits it.
    mlflow_key = os.environ.pop(MLFLOW_KEY_ENV, "")
    if args.mlflow_url and not mlflow_key:
        _refuse(f"--mlflow-url needs the MLflow user key in {MLFLOW_KEY_ENV} (the hub sets it)")
    # With a further mount point (/services/mlflow/) the login cookie must reach it too; only
    # hub services live below .../services/, never a user's server.
    shared = os.path.dirname(args.mlflow_at[0].rstrip("/")) + "/" if args.mlflow_at else ""
    hub_auth = SharedCookieHubOAuth(cache_max_age=AUTH_CACHE_SECONDS, shared_cookie_path=shared)
    if not hub_auth.access_scopes:
        _refuse("the hub gave no access scopes, so anyone it knows would get in")
    audit_log = AuditLog(args.state / "audit")
    found = audit_log.open()
    if found == "missing":
        log.error(
            "the audit log %s is MISSING: appends are refused until it is restored", audit_log.path
        )
    service = Service(
        hub_auth,
        audit_log,
        CaseDirectory(args.case_index, args.cases_root),
        prefix=os.environ.get("JUPYTERHUB_SERVICE_PREFIX", PREFIX),
        mlflow=MlflowUpstream(args.mlflow_url, mlflow_key, also_at=tuple(args.mlflow_at))
        if args.mlflow_url
        else None,
    )
    # A fresh cookie secret each start: a restart only sends browsers through the hub's
    # login once more (no prompt), and no secret file needs guarding.
    app = make_app(service, cookie_secret=secrets.token_bytes(32), extra_routes=review_routes(service))

    async def serve() -> None:
        app.listen(port, address=url.hostname or "127.0.0.1")
        log.info("platform service at %s (audit log %s)", service.prefix, found)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
