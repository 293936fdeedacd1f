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

from jupyterhub.services.auth import HubOAuth

from idsp.service import PREFIX
from idsp.service.app import Service, make_app
from idsp.service.auditlog import AuditLog
from idsp.service.cases import CaseDirectory

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
    hub_auth = HubOAuth(cache_max_age=AUTH_CACHE_SECONDS)
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
    )
    # A fresh cookie secret each start: a restart only sends browsers through the hub's
    # login once more (no prompt), and no secret file needs guarding.
    app = make_app(service, cookie_secret=secrets.token_bytes(32))

    async def serve() -> None:
        app.listen(port, address=url.hostname or "127.0.0.1")
        log.info("platform service at %s (audit log %s)", service.prefix, found)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
