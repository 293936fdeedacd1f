"""Sharing a case folder with its OS group: the whole tree the first time, by file
descriptors, never through a symbolic link (root does this, so a link must not become a way
to change files outside the case)."""

from __future__ import annotations

import grp
import os
import secrets
import stat
import subprocess

import pytest
from idsp.hub import accounts


@pytest.fixture
def group():
    if os.geteuid() != 0:
        pytest.fail("sharing folders needs root (chown); CI runs as root")
    name = "idsptest-" + secrets.token_hex(3)
    yield name
    subprocess.run(["groupdel", name], capture_output=True)


def test_first_share_walks_the_tree_and_never_follows_links(tmp_path, group):
    case = tmp_path / "case"
    (case / "src").mkdir(parents=True)
    (case / "src" / "model.py").write_text("x = 1\n")
    os.chmod(case / "src" / "model.py", 0o644)
    (case / "run.sh").write_text("echo hi\n")
    os.chmod(case / "run.sh", 0o744)
    outside = tmp_path / "outside.txt"
    outside.write_text("not the case's")
    os.chmod(outside, 0o600)
    os.symlink(outside, case / "link")
    os.symlink(tmp_path, case / "up")
    os.mkfifo(case / "fifo")  # opened without blocking, and left alone
    subprocess.run(["git", "init", "-q", str(case)], check=True)

    accounts.share_folder(case, group)

    gid = grp.getgrnam(group).gr_gid
    def mode(p):
        return stat.S_IMODE(p.stat().st_mode)
    assert (mode(case), case.stat().st_gid) == (0o2770, gid)
    assert mode(case / "src") == 0o2770 and (case / "src").stat().st_gid == gid
    assert mode(case / "src" / "model.py") == 0o660 and (case / "src" / "model.py").stat().st_gid == gid
    assert mode(case / "run.sh") == 0o770
    assert mode(outside) == 0o600 and outside.stat().st_gid != gid  # the link's target is untouched
    assert mode(tmp_path) != 0o2770
    shared = subprocess.run(["git", "-C", str(case), "config", "core.sharedRepository"],
                            capture_output=True, text=True).stdout.strip()
    assert shared == "group"

    # later shares do not walk again: a member's private file stays as the member made it
    (case / "src" / "notes.txt").write_text("mine")
    os.chmod(case / "src" / "notes.txt", 0o600)
    accounts.share_folder(case, group)
    assert mode(case / "src" / "notes.txt") == 0o600
