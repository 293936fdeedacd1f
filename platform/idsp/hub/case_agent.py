"""The case agent: the few root operations the platform service may ask for, on a Unix socket.

Rule: the platform service runs unprivileged, so making a case folder and changing who may
enter it are done here, as root, and nothing else: a fixed set of operations (``ping``,
``make_case``, ``grant``, ``revoke``, and ``run``: an official run of one commit as the runner
account, :mod:`idsp.hub.runner`), each with its arguments checked strictly (case ids by
the case id pattern, hub user names by ``accounts.USERNAME_RE``, answers as short strings).
Only the service's own account gets in: the socket lives in a root folder of the service's
group (0750, socket 0660), and every connection's peer uid (``SO_PEERCRED``) must be the
service's. A case is rendered in a root-only staging folder (0700), given its ACLs there and
then moved into place by rename, so it is never readable by others, not for a moment.
Started by ``idsp hub up`` (the supervisor), ended with it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import secrets
import shutil
import socket
import socketserver
import stat
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from idsp.case_file import SLUG_RE
from idsp.errors import IdspError, UserError
from idsp.hub import accounts
from idsp.hub.case_access import CaseFolders, NotACase
from idsp.hub.case_registry import CaseRegistry

log = logging.getLogger("idsp.hub.case_agent")
MAX_REQUEST = 16 * 1024
ANSWER_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_ANSWERS = 24
MAX_ANSWER = 500
STAGING = ".staging"
OPS = {
    "ping": set(),
    "make_case": {"case_id", "owner", "data"},
    "grant": {"case_id", "user"},
    "revoke": {"case_id", "user"},
    # an official run from one commit, as the runner account (idsp.hub.runner)
    "run": {"case_id", "commit", "stage", "run_id", "env"},
}


class BadRequest(ValueError):
    """A request the agent does not take: it says which field is wrong."""


def _case_id(value: Any) -> str:
    if not isinstance(value, str) or not SLUG_RE.match(value):
        raise BadRequest(
            "`case_id` must be a case id: lower-case letters, digits and dashes, 3-64 long"
        )
    return value


def _user(value: Any, field: str = "user") -> str:
    if not isinstance(value, str) or not accounts.USERNAME_RE.match(value):
        raise BadRequest(f"`{field}` must be a hub user name ({accounts.USERNAME_PATTERN})")
    return value


def _answers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > MAX_ANSWERS:
        raise BadRequest(f"`data` must be an object of at most {MAX_ANSWERS} answers")
    for key, answer in value.items():
        if not isinstance(key, str) or not ANSWER_KEY_RE.match(key):
            raise BadRequest(f"answer name {key!r} is not a template question name")
        if not isinstance(answer, str) or len(answer) > MAX_ANSWER or "\x00" in answer:
            raise BadRequest(f"answer {key!r} must be text of at most {MAX_ANSWER} characters")
    return dict(value)


def check(request: Any) -> tuple[str, dict[str, Any]]:
    """The operation and its checked arguments, or ``BadRequest``."""
    if not isinstance(request, dict) or not isinstance(request.get("op"), str):
        raise BadRequest("a request is a JSON object with `op`")
    op = request["op"]
    if op not in OPS:
        raise BadRequest(f"unknown operation {op!r}; the agent does {', '.join(sorted(OPS))}")
    args = {k: v for k, v in request.items() if k != "op"}
    extra = sorted(set(args) - OPS[op])
    missing = sorted(OPS[op] - set(args))
    if extra or missing:
        raise BadRequest(
            f"{op} takes {', '.join(sorted(OPS[op])) or 'nothing'}; got {', '.join(sorted(args)) or 'nothing'}"
        )
    if "case_id" in args:
        args["case_id"] = _case_id(args["case_id"])
    if "user" in args:
        args["user"] = _user(args["user"])
    if "owner" in args:
        args["owner"] = _user(args["owner"], "owner")
    if "data" in args:
        args["data"] = _answers(args["data"])
    if op == "run":
        from idsp.hub import runner

        if not isinstance(args["commit"], str) or not runner.COMMIT_RE.match(args["commit"]):
            raise BadRequest("`commit` must be a full commit id (40 lower-case hex digits)")
        if not isinstance(args["stage"], str) or (args["stage"] and not runner.STAGE_RE.match(args["stage"])):
            raise BadRequest(f"`stage` must be empty or a DVC stage name ({runner.STAGE_RE.pattern})")
        if not isinstance(args["run_id"], str) or not runner.RUN_ID_RE.match(args["run_id"]):
            raise BadRequest("`run_id` must be 32 lower-case hex digits")
        args["env"] = runner.check_env(args["env"])
    return op, args


class Agent:
    def __init__(self, cfg, folders: CaseFolders, registry: CaseRegistry, service_uid: int,
                 service_gid: int | None = None, runs_root: Path | None = None):
        self.cfg = cfg
        self.folders = folders
        self.registry = registry
        self.service_uid = service_uid
        self.service_gid = service_uid if service_gid is None else service_gid  # the user group
        self.runs_root = runs_root or (cfg.home / "runner" if cfg is not None else None)
        self.lock = threading.Lock()  # one change at a time: ACL walks must not interleave

    def handle(self, request: Any) -> dict[str, Any]:
        try:
            op, args = check(request)
            if op == "run":  # runs go on their own thread: no lock held while one runs
                return {"ok": True, "result": self.op_run(**args)}
            with self.lock:
                result = getattr(self, "op_" + op)(**args)
            return {"ok": True, "result": result}
        except (BadRequest, NotACase, ValueError) as exc:
            return {"ok": False, "kind": "bad", "error": str(exc)}
        except IdspError as exc:
            return {"ok": False, "kind": "refused", "error": exc.what, "fix": exc.fix or ""}
        except Exception as exc:  # noqa: BLE001 - the service gets a reason, the log the details
            log.exception("%s failed", request.get("op") if isinstance(request, dict) else request)
            return {"ok": False, "kind": "failed", "error": f"{exc.__class__.__name__}: {exc}"}

    def op_ping(self) -> dict[str, Any]:
        return {"pong": True}

    def _sync(self, user: str) -> dict[str, Any]:
        return self.folders.sync_user(user, self.registry.load())

    def op_grant(self, case_id: str, user: str) -> dict[str, Any]:
        account = self.folders.account(user)
        if account is None:  # no server yet: its first start applies the registry
            return {"account": False}
        t0 = time.monotonic()
        self.folders.grant(case_id, account)
        return {**self._sync(user), "seconds": round(time.monotonic() - t0, 3)}

    def op_revoke(self, case_id: str, user: str) -> dict[str, Any]:
        account = self.folders.account(user)
        if account is None:
            return {"account": False}
        self.folders.revoke(case_id, account)
        return self._sync(user)

    def op_make_case(self, case_id: str, owner: str, data: dict[str, str]) -> dict[str, Any]:
        from idsp import case_projects, case_template

        target = self.folders.cases_root / case_id
        if os.path.lexists(target):
            raise UserError(f"a case folder {case_id} already exists", where=str(target),
                            fix="Choose another case id")  # fmt: skip
        answers = case_template.resolve_answers(case_id, data, ask=None)
        staging = _staging(self.folders.cases_root)
        try:
            made = case_projects.new_case(
                case_id, answers, dest=staging, cfg=self.cfg, record=False
            )
            _share_git(staging / case_id)
            owner_account = self.folders.account(owner)
            grants = {self.service_uid: "rX"}
            if owner_account is not None:
                grants[owner_account.pw_uid] = "rwX"
            from idsp.hub import acl

            acl.change_tree(staging / case_id, grants)
            remote = self.folders.remote(case_id)
            if remote is not None:
                os.chmod(remote, 0o700)
                acl.change_tree(remote, grants)
            os.rename(staging / case_id, target)  # into place with its access already set
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        links = self._sync(owner) if owner_account is not None else {"account": False}
        return {"path": str(target), "template_version": made.template_version,
                "dvc_remote": made.dvc_remote, "steps": made.steps, "links": links}  # fmt: skip


    def op_run(self, case_id: str, commit: str, stage: str, run_id: str, env: dict[str, str]) -> dict[str, Any]:
        """Start an official run of ``commit`` (the service checked the gate); see idsp.hub.runner."""
        from idsp.hub import runner

        root = self.folders.folder(case_id)
        remote = self.folders.remote(case_id)
        sources = [root / ".dvc" / "cache", *([remote] if remote else [])]
        runs = runner.Runs(self.runs_root or self.folders.cases_root.parent / "runner", self.service_gid)
        job = {"case_root": root, "commit": commit, "stage": stage, "run_id": run_id, "env": env}
        return runner.start(job, sources, runs, self.folders.user_prefix)


def _staging(cases_root: Path) -> Path:
    """A fresh root-only folder inside the cases folder (same file system: rename works)."""
    parent = cases_root / STAGING
    try:
        os.mkdir(parent, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(parent)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
        raise UserError("the staging folder is not root's own folder", where=str(parent),
                        fix="Remove it; the agent makes a new one")  # fmt: skip
    os.chmod(parent, 0o700)
    folder = parent / secrets.token_hex(8)
    os.mkdir(folder, 0o700)
    return folder


def _share_git(case: Path) -> None:
    """git keeps what members write readable and writable for the other members."""
    subprocess.run(["git", "-C", str(case), "config", "core.sharedRepository", "group"],
                   check=True, capture_output=True)  # fmt: skip


def peer_uid(sock: socket.socket) -> int:
    _pid, uid, _gid = struct.unpack(
        "3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
    )
    return uid


class _Handler(socketserver.StreamRequestHandler):
    timeout = 30

    def handle(self) -> None:
        agent: Agent = self.server.agent  # type: ignore[attr-defined]
        uid = peer_uid(self.request)
        if uid != agent.service_uid:
            log.warning(
                "refused a connection from uid %s (only the platform service's uid %s)",
                uid,
                agent.service_uid,
            )
            self._reply(
                {"ok": False, "kind": "refused", "error": f"uid {uid} may not use the case agent"}
            )
            return
        line = self.rfile.readline(MAX_REQUEST + 1)
        if len(line) > MAX_REQUEST:
            self._reply(
                {"ok": False, "kind": "bad", "error": f"a request is at most {MAX_REQUEST} bytes"}
            )
            return
        try:
            request = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            self._reply({"ok": False, "kind": "bad", "error": "a request is one line of JSON"})
            return
        self._reply(agent.handle(request))

    def _reply(self, answer: dict[str, Any]) -> None:
        self.wfile.write(json.dumps(answer).encode() + b"\n")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def prepare_socket(path: Path, service_gid: int) -> None:
    """The socket's folder: root's, the service's group, 0750; a stale socket removed."""
    folder = path.parent
    folder.mkdir(mode=0o750, parents=True, exist_ok=True)
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
        raise UserError("the case agent's folder is not root's own folder", where=str(folder))
    os.chown(folder, 0, service_gid)
    os.chmod(folder, 0o750)
    if os.path.lexists(path):
        os.unlink(path)


def serve(
    agent: Agent, path: Path, service_gid: int, ready: threading.Event | None = None
) -> _Server:
    prepare_socket(path, service_gid)
    old = os.umask(0o177)  # the socket is born 0600, then given to the service's group
    try:
        server = _Server(str(path), _Handler)
    finally:
        os.umask(old)
    os.chown(path, 0, service_gid)
    os.chmod(path, 0o660)
    server.agent = agent  # type: ignore[attr-defined]
    if ready is not None:
        ready.set()
    return server


def call(path: Path | str, request: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    """One request to the agent; its answer (``{"ok": ...}``)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(json.dumps(request).encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(
        data or b'{"ok": false, "kind": "failed", "error": "the agent closed the connection"}'
    )


def main(argv: list[str] | None = None) -> None:
    import pwd

    from idsp.config import load_config

    parser = argparse.ArgumentParser(prog="python -m idsp.hub.case_agent")
    parser.add_argument("--socket", type=Path, required=True)
    parser.add_argument("--service-user", required=True)
    parser.add_argument("--registry", type=Path, required=True)
    parser.add_argument("--git-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="[idsp-case-agent %(levelname)s %(asctime)s] %(message)s"
    )
    if os.geteuid() != 0:
        raise SystemExit("idsp case agent: runs as root (started by `idsp hub up`)")
    os.umask(0o077)  # what it makes is nobody else's until an ACL says so
    cfg = load_config()
    service = pwd.getpwnam(args.service_user)
    folders = CaseFolders(cfg.path("cases_root"), cfg.dvc_remote_folder(), args.git_dir,
                          cfg.hub.user_prefix, service.pw_uid)  # fmt: skip
    agent = Agent(cfg, folders, CaseRegistry(args.registry), service.pw_uid, service.pw_gid)
    import copier  # noqa: F401 - loaded once here, not at the first case

    import idsp.case_projects  # noqa: F401

    server = serve(agent, args.socket, service.pw_gid)
    log.info("listening on %s for uid %s", args.socket, service.pw_uid)
    server.serve_forever()


if __name__ == "__main__":
    main()
