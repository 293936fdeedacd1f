"""The service's OS account and state folder as ``idsp hub up`` makes them (needs root)."""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from idsp.config import load_config
from idsp.errors import UserError
from idsp.hub import accounts
from idsp.service.account import account_name, prepare, state_dir


@pytest.fixture
def platform(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.fail("making the service account needs root (useradd); CI runs as root")
    prefix = "s" + secrets.token_hex(3) + "-"
    # below /tmp itself: the pytest folder (0700) would keep the account out of its state
    home = Path(f"/tmp/idsp-svctest-{prefix[:-1]}")
    home.mkdir(mode=0o711)
    index = home / "cases" / "index.yaml"
    index.parent.mkdir()
    index.write_text("cases: []\n")
    os.chmod(index, 0o644)
    monkeypatch.setenv("IDSP_HOME", str(home))
    cfg = load_config(
        environ={"IDSP_HUB__USER_PREFIX": prefix, "IDSP_PATHS__CASE_INDEX": str(index)}
    )
    yield cfg, index, prefix
    for name in accounts.accounts_with_prefix(prefix):
        subprocess.run(["userdel", name], capture_output=True)
    for name in accounts.groups_with_prefix(prefix):
        subprocess.run(["groupdel", name], capture_output=True)
    shutil.rmtree(home, ignore_errors=True)


def test_account_state_folder_and_index_are_the_services(platform):
    cfg, index, prefix = platform
    entry = prepare(cfg, index)
    assert entry.pw_name == account_name(prefix) == f"{prefix}svc-idsp"
    assert entry.pw_shell in ("/usr/sbin/nologin", "/bin/false")
    folder = state_dir(cfg)
    info = folder.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (entry.pw_uid, 0o700)
    idx = index.stat()
    assert (idx.st_uid, grp.getgrgid(idx.st_gid).gr_name, stat.S_IMODE(idx.st_mode)) == (
        0,
        entry.pw_name,
        0o640,
    )
    # a second `hub up` finds it all in place
    assert prepare(cfg, index).pw_uid == entry.pw_uid
    assert pwd.getpwnam(entry.pw_name).pw_dir == str(folder)


def test_closed_folders_above_the_state_are_opened_for_search_or_named(platform, monkeypatch):
    cfg, index, prefix = platform
    closed = cfg.home / "closed"
    (closed / "home").mkdir(parents=True)
    os.chmod(closed, 0o700)
    monkeypatch.setenv("IDSP_HOME", str(closed / "home"))
    strict = load_config(
        environ={"IDSP_HUB__USER_PREFIX": prefix, "IDSP_HUB__OPEN_INTERPRETER_PATH": "false"}
    )
    with pytest.raises(UserError, match=r"the platform service \(state folder .*\) could not pass") as err:
        prepare(strict, index)
    assert str(closed) in str(err.value)
    notes = []
    prepare(load_config(environ={"IDSP_HUB__USER_PREFIX": prefix}), index, echo=notes.append)
    assert stat.S_IMODE(closed.stat().st_mode) == 0o701  # search, never read
    assert str(closed) in notes[0]


def test_a_secret_handed_to_the_service_replaces_a_planted_link_and_never_writes_through_it(tmp_path):
    from idsp.service.account import hand_secret

    nobody = pwd.getpwnam("nobody")
    precious = tmp_path / "precious"
    precious.write_text("root's own\n")
    planted = tmp_path / "mlflow-admin-password"
    planted.symlink_to(precious)  # what a service account could leave in its own folder
    hand_secret(planted, "s3cret", nobody)
    assert precious.read_text() == "root's own\n" and precious.stat().st_uid == 0
    info = os.lstat(planted)
    assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o400
    assert (info.st_uid, planted.read_text()) == (nobody.pw_uid, "s3cret\n")
