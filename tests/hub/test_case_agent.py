"""The case agent as root with a real Unix socket, real OS accounts and real ACLs.

Only the platform service's account gets in (socket permissions AND the peer uid), every
malformed request is refused with its reason, a member's access comes and goes at once, and
a link planted in a case or a home is never followed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from idsp.hub import accounts, acl
from idsp.hub.case_access import CaseFolders
from idsp.hub.case_agent import Agent, call, check, serve
from idsp.hub.case_registry import CaseRegistry

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the agent runs as root")


@pytest.fixture(scope="module")
def world():
    prefix = "a" + secrets.token_hex(3) + "-"
    from idsp.hub.supervisor import blocked_dirs

    # the accounts run this Python, as user servers do (`idsp hub up` opens the same path)
    accounts.open_search_bits(
        blocked_dirs(), True, who="test accounts", fix="", echo=lambda _: None
    )
    base = Path(f"/tmp/idsp-agenttest-{prefix[:-1]}")
    base.mkdir(mode=0o711)
    homes = base / "homes"
    made = {}
    with accounts.OS_LOCK:
        for who in ("svc", "ann", "ben", "eve"):
            made[who] = accounts.ensure_account(prefix + who, homes)
    os.chmod(homes, 0o711)
    cases = base / "cases"
    cases.mkdir(mode=0o711)
    folders = CaseFolders(cases, None, base / "git", prefix, made["svc"].pw_uid)
    registry = CaseRegistry(base / "state" / "cases.json")
    agent = Agent(None, folders, registry, made["svc"].pw_uid)
    sock = base / "agent" / "agent.sock"
    server = serve(agent, sock, made["svc"].pw_gid)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {
        "prefix": prefix,
        "base": base,
        "sock": sock,
        "acc": made,
        "agent": agent,
        "registry": registry,
    }
    server.shutdown()
    server.server_close()
    for who in made.values():
        subprocess.run(["userdel", "--remove", who.pw_name], capture_output=True)
        subprocess.run(["groupdel", who.pw_name], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


def _as(account, code: str) -> subprocess.CompletedProcess:
    from jupyterhub.spawner import set_user_setuid

    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True,
        preexec_fn=set_user_setuid(account.pw_name), cwd="/", timeout=60,
        env={"PATH": os.environ["PATH"]},
    )  # fmt: skip


def _call_as(account, sock: Path, request: dict) -> dict:
    done = _as(
        account,
        f"import json; from idsp.hub.case_agent import call; print(json.dumps(call({str(sock)!r}, {request!r})))",
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _case(world, case_id: str, members=()) -> Path:
    folder = world["base"] / "cases" / case_id
    (folder / "src").mkdir(parents=True, mode=0o700)
    os.chmod(folder, 0o700)
    (folder / "src" / "model.py").write_text("X = 1\n")
    with world["registry"].changing() as cases:
        cases[case_id] = {
            "id": case_id,
            "owners": [],
            "members": list(members),
            "path": str(folder),
        }
    return folder


def test_the_socket_lets_only_the_service_account_in(world):
    sock, acc = world["sock"], world["acc"]
    assert (os.stat(sock).st_mode & 0o777, os.stat(sock.parent).st_mode & 0o777) == (0o660, 0o750)
    assert _call_as(acc["svc"], sock, {"op": "ping"}) == {"ok": True, "result": {"pong": True}}
    # another account cannot even reach the socket's folder
    done = _as(
        acc["eve"], f"from idsp.hub.case_agent import call; call({str(sock)!r}, {{'op': 'ping'}})"
    )
    assert done.returncode != 0 and "PermissionError" in done.stderr
    # root passes the file permissions, but is not the service: the peer uid decides
    answer = call(sock, {"op": "ping"})
    assert answer == {"ok": False, "kind": "refused", "error": "uid 0 may not use the case agent"}


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"op": "rm", "path": "/"}, "unknown operation 'rm'"),
        ({"op": "grant", "case_id": "../../etc", "user": "ann"}, "`case_id` must be a case id"),
        ({"op": "grant", "case_id": "ce-x-1", "user": "root;id"}, "`user` must be a hub user name"),
        ({"op": "grant", "case_id": "ce-x-1", "user": "a-svc"}, "`user` must be a hub user name"),
        ({"op": "grant", "case_id": "ce-x-1"}, "grant takes case_id, user"),
        (
            {"op": "revoke", "case_id": "ce-x-1", "user": "ann", "path": "/etc"},
            "revoke takes case_id, user",
        ),
        (
            {"op": "make_case", "case_id": "ce-x-1", "owner": "ann", "data": {"../x": "1"}},
            "not a template question",
        ),
        (
            {"op": "make_case", "case_id": "ce-x-1", "owner": "ann", "data": {"title": 5}},
            "must be text",
        ),
        (["op", "ping"], "a request is a JSON object"),
    ],
)
def test_malformed_requests_are_refused_with_their_reason(world, request_, message):
    answer = _call_as(world["acc"]["svc"], world["sock"], request_)
    assert answer["ok"] is False and answer["kind"] == "bad" and message in answer["error"]


def test_not_json_and_oversize_are_refused(world):
    import socket

    from jupyterhub.spawner import set_user_setuid  # noqa: F401 - the same path as above

    code = f"""
import socket, json
for payload in (b"not json\\n", b"x" * 20000 + b"\\n"):
    s = socket.socket(socket.AF_UNIX); s.connect({str(world["sock"])!r}); s.sendall(payload)
    print(s.makefile().readline().strip()); s.close()
"""
    done = _as(world["acc"]["svc"], code)
    lines = [json.loads(x) for x in done.stdout.splitlines()]
    assert "one line of JSON" in lines[0]["error"] and "at most 16384 bytes" in lines[1]["error"]
    assert socket  # the module is used in the child


def test_check_refuses_a_case_folder_that_is_a_link(world):
    (world["base"] / "cases" / "ce-link-1").symlink_to("/etc")
    answer = _call_as(
        world["acc"]["svc"], world["sock"], {"op": "grant", "case_id": "ce-link-1", "user": "ann"}
    )
    assert answer["ok"] is False and "not a case folder made by the platform" in answer["error"]
    assert check({"op": "ping"}) == ("ping", {})


def test_grant_opens_the_case_at_once_and_revoke_closes_it(world):
    acc, sock = world["acc"], world["sock"]
    folder = _case(world, "ce-acl-1", members=["ann"])
    secret = world["base"] / "root-secret"
    secret.write_text("root only\n")
    os.chmod(secret, 0o600)
    (folder / "src" / "planted").symlink_to(secret)
    read = f"print(open({str(folder / 'src' / 'model.py')!r}).read())"
    assert _as(acc["ann"], read).returncode != 0
    answer = _call_as(acc["svc"], sock, {"op": "grant", "case_id": "ce-acl-1", "user": "ann"})
    assert answer["ok"], answer
    assert _as(acc["ann"], read).stdout == "X = 1\n\n"
    write = f"open({str(folder / 'src' / 'new.py')!r}, 'w').write('Y = 2')"
    assert _as(acc["ann"], write).returncode == 0
    assert _as(acc["eve"], read).returncode != 0  # not a member
    assert acl.named_users(secret) == {}  # the planted link was not followed
    home = Path(acc["ann"].pw_dir)
    assert os.readlink(home / "cases" / "ce-acl-1") == str(folder)
    gitconfig = world["base"] / "git" / f"{acc['ann'].pw_name}.gitconfig"
    assert str(folder) in gitconfig.read_text()
    # and git, reading that file as its system config, knows who commits: the hub name
    who = subprocess.run(["git", "config", "user.name"], env={"GIT_CONFIG_SYSTEM": str(gitconfig),
                         "GIT_CONFIG_GLOBAL": "/dev/null", "HOME": "/nonexistent"},
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert who.stdout.strip() == "ann"
    with world["registry"].changing() as cases:
        cases["ce-acl-1"]["members"] = []
    answer = _call_as(acc["svc"], sock, {"op": "revoke", "case_id": "ce-acl-1", "user": "ann"})
    assert answer["ok"], answer
    refused = _as(acc["ann"], read)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    assert not os.path.lexists(home / "cases" / "ce-acl-1")


def test_a_link_planted_in_the_home_is_not_followed(world):
    acc, sock = world["acc"], world["sock"]
    home = Path(acc["ben"].pw_dir)
    target = world["base"] / "elsewhere"
    target.mkdir()
    (home / "cases").symlink_to(target)
    _case(world, "ce-home-1", members=["ben"])
    answer = _call_as(acc["svc"], sock, {"op": "grant", "case_id": "ce-home-1", "user": "ben"})
    assert answer["ok"] and "error" in answer["result"]["links"]  # access given, no link made
    assert list(target.iterdir()) == []
