"""Run a command as the leader of its own process group; on SIGTERM end the whole group.

Rule: whatever the command starts (an MLflow server's workers, job runner and task
consumers) ends with it. ``python -m idsp.hub.groupexec -- CMD ...``: SIGTERM/SIGINT are
forwarded to the group, and after ``GRACE`` seconds whatever is left gets SIGKILL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

GRACE = 10.0


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("usage: python -m idsp.hub.groupexec -- CMD [ARG...]", file=sys.stderr)
        return 2
    if os.getpgrp() != os.getpid():
        os.setpgid(0, 0)
    pgid = os.getpgrp()
    child = subprocess.Popen(argv)
    stopping = {"sig": None}

    def _stop(signum, _frame):
        stopping["sig"] = signum

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while child.poll() is None and stopping["sig"] is None:
        time.sleep(0.2)
    code = child.returncode
    # End the group either way: a parent that died may have left workers behind.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + GRACE
    while time.monotonic() < deadline and _group_alive(pgid):
        child.poll()  # reap, so a finished child does not count as alive
        time.sleep(0.1)
    if _group_alive(pgid):
        _kill_others(pgid)
    if code is None:
        code = child.wait()
    return 0 if stopping["sig"] else code


def _group_alive(pgid: int) -> bool:
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            if os.getpgid(int(entry)) == pgid and _not_zombie(entry):
                return True
        except (ProcessLookupError, PermissionError):
            continue
    return False


def _not_zombie(pid: str) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _kill_others(pgid: int) -> None:
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != me:
            try:
                if os.getpgid(int(entry)) == pgid:
                    os.kill(int(entry), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                continue


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
