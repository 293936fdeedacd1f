"""``python -m idsp.service``: the platform service as the hub starts it.

Rule: it refuses to run as root, with a state folder others can enter, or without the access
scope the hub hands it (that would let every hub identity in). Everything it needs comes from
its command line (set by the platform's configurer) and from the ``JUPYTERHUB_*`` variables
the hub sets; it never reads ``platform.yaml``, ``IDSP_*`` variables or a user's files. The
MLflow user key comes from a file only this account reads (never the environment, which stays
readable in ``/proc/<pid>/environ``), and the process is made non-dumpable at once, so no
core file or ptrace by the same account shows the key. No request body above 64 KiB is
read into memory (the MLflow proxy raises its own limit per request).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import ctypes.util
import logging
import os
import pwd
import secrets
import stat
import sys
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlparse

from idsp.hub.case_registry import CaseRegistry
from idsp.service import PREFIX
from idsp.service.app import MAX_BODY, Service, make_app
from idsp.service.auditlog import AuditLog
from idsp.service.case_api import case_maker
from idsp.service.case_api import routes as case_routes
from idsp.service.case_pages import routes as case_page_routes
from idsp.service.cases import CaseDirectory
from idsp.service.hubconfig import MLFLOW_KEY_ENV
from idsp.service.mlflow_proxy import MlflowUpstream, SharedCookieHubOAuth
from idsp.service.models import all_routes as run_routes
from idsp.service.review_api import all_routes as review_routes

log = logging.getLogger("idsp.service")
AUTH_CACHE_SECONDS = 60  # how long a changed group or revoked scope may take to be seen
PR_SET_DUMPABLE = 4  # <linux/prctl.h>
MAX_BUFFER = 1024 * 1024  # what tornado may hold of one connection's input at a time
MAX_KEY_FILE = 4096


def git_reads_cases() -> None:
    """The review code binds a case's code as its committed git tree (``git ls-tree``), in
    repositories the service does not own: git's ownership check would refuse them and the
    service would bind other bytes than the user's gate. Trusted for reading only, with no
    repository able to make this process run a program (no fsmonitor, no hooks)."""
    from legal_ethics.bindings import COMMITTED_ONLY_ENV

    # and never `git status`: a clean filter named in a repository's config would run
    os.environ[COMMITTED_ONLY_ENV] = "1"
    pairs = [("safe.directory", "*"), ("core.fsmonitor", "false"), ("core.hooksPath", "/dev/null")]
    os.environ["GIT_CONFIG_COUNT"] = str(len(pairs))
    for i, (key, value) in enumerate(pairs):
        os.environ[f"GIT_CONFIG_KEY_{i}"], os.environ[f"GIT_CONFIG_VALUE_{i}"] = key, value


def _refuse(message: str) -> NoReturn:
    print(f"idsp service: {message}", file=sys.stderr)
    raise SystemExit(2)


def not_dumpable() -> bool:
    """prctl(PR_SET_DUMPABLE, 0): no core dump, and /proc/<pid>/mem, environ and ptrace for
    root only. False where there is no Linux libc (nothing to do there)."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        _refuse(f"prctl(PR_SET_DUMPABLE, 0) failed (errno {ctypes.get_errno()})")
    return True


def read_key_file(path: Path) -> str:
    """The MLflow user key: a plain file of this account's own, readable by nobody else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        _refuse(f"cannot open the MLflow user key file {path} ({exc.strerror}); `idsp hub up` writes it")
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o077:
            _refuse(f"{path} must be a plain file of this account's own with mode 0400 (`idsp hub up` makes it so)")
        key = fh.read(MAX_KEY_FILE).decode("ascii", "replace").strip()
    if not key:
        _refuse(f"the MLflow user key file {path} is empty")
    return key


def _owner_uid(name: str) -> int:
    try:
        return int(name) if name.isdigit() else pwd.getpwnam(name).pw_uid
    except KeyError:
        _refuse(f"--mlflow-owner {name!r} is no account on this machine")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m idsp.service")
    parser.add_argument("--state", type=Path, required=True, help="the service's own folder (0700)")
    parser.add_argument("--case-index", type=Path, required=True)
    parser.add_argument("--cases-root", type=Path, required=True)
    parser.add_argument("--mlflow-url", help="the MLflow server to forward <prefix>mlflow/ to")
    parser.add_argument("--mlflow-at", action="append", default=[], help="a further mount point")
    parser.add_argument("--mlflow-key-file", type=Path, help="the MLflow user key (this account's, 0400)")
    parser.add_argument("--mlflow-owner", default="root",
                        help="the account MLflow runs as: only its socket on MLflow's port gets passwords")  # fmt: skip
    parser.add_argument("--agent-socket", type=Path, help="the root case agent's socket (`idsp hub up` starts it)")
    parser.add_argument("--lead-group", default="projectleiders", help="the hub group of project leads")
    parser.add_argument("--mlflow-admin-file", type=Path, help="the MLflow admin password (this account's, 0400)")
    parser.add_argument("--dvc-remote", type=Path, help="the platform's DVC remote folder (one folder per case)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="[idsp-service %(levelname)s %(asctime)s] %(message)s"
    )

    if os.geteuid() == 0:
        _refuse("refusing to run as root: the hub starts it as its own account (docs/service.md)")
    not_dumpable()  # before any secret is read
    info = args.state.stat()
    if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o077:
        _refuse(
            f"{args.state} must be this account's own folder with mode 0700 (`idsp hub up` makes it so)"
        )
    os.umask(0o077)
    git_reads_cases()
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL", ""))
    port = url.port
    if not port:
        _refuse("JUPYTERHUB_SERVICE_URL is not set: the hub starts this service")
    # The key comes from its file; the environment (MLFLOW_KEY_ENV) only where no file is
    # given (a Kubernetes Secret as a variable), and is taken out of it at once.
    mlflow_key = read_key_file(args.mlflow_key_file) if args.mlflow_key_file else os.environ.pop(MLFLOW_KEY_ENV, "")
    if args.mlflow_url and not mlflow_key:
        _refuse("--mlflow-url needs the MLflow user key: --mlflow-key-file (written by `idsp hub up`)")
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
    # the old index's cases were imported into the registry by `idsp hub up` (as root: only
    # root reads their case.yaml); from here on the registry is the truth
    cases = CaseDirectory(args.case_index, args.cases_root, CaseRegistry.in_state(args.state))
    service = Service(
        hub_auth,
        audit_log,
        cases,
        prefix=os.environ.get("JUPYTERHUB_SERVICE_PREFIX", PREFIX),
        mlflow=MlflowUpstream(args.mlflow_url, mlflow_key, also_at=tuple(args.mlflow_at),
                              owners=frozenset({_owner_uid(args.mlflow_owner)}))  # fmt: skip
        if args.mlflow_url
        else None,
    )
    # A fresh cookie secret each start: a restart only sends browsers through the hub's
    # login once more (no prompt), and no secret file needs guarding.
    service.case_maker = case_maker(args, mlflow_key)
    service.dvc_remote_root = args.dvc_remote  # type: ignore[attr-defined]
    app = make_app(
        service, cookie_secret=secrets.token_bytes(32),
        extra_routes=[*case_routes(service.prefix, service), *case_page_routes(service.prefix, service),
                      *review_routes(service), *run_routes(service)],
    )

    async def serve() -> None:
        # tornado's defaults would read 100 MB of a body before any handler could refuse it
        app.listen(port, address=url.hostname or "127.0.0.1", max_body_size=MAX_BODY, max_buffer_size=MAX_BUFFER)
        log.info("platform service at %s (audit log %s)", service.prefix, found)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
