"""Memory and CPU limits for a user server, enforced by the kernel.

Rule: the memory limit is always enforced by the kernel, never silently dropped: a cgroup
(v2, else the v1 memory controller) and, where no cgroup is writable, ``RLIMIT_DATA`` (heap
and private mappings). The CPU limit needs a cgroup; the hub log says how each server's
limits are enforced, including "CPU not enforced". A server's cgroups live as long as the
server: removed when it stops (once its last process has left them), and whatever a stop
could not remove is removed by ``idsp hub down`` (:func:`remove_stale`).
"""

from __future__ import annotations

import errno
import os
import resource
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_bytes(value: str | int | None) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    value = str(value).strip().upper()
    if value[-1] in _UNITS:
        return int(float(value[:-1]) * _UNITS[value[-1]])
    return int(value)


def cgroup_mode(root: Path = CGROUP_ROOT) -> str:
    controllers = root / "cgroup.controllers"
    if controllers.is_file() and "memory" in controllers.read_text():
        return "v2"
    if (root / "memory" / "cgroup.procs").is_file():
        return "v1"
    return "none"


def _bases(root: Path) -> list[Path]:
    # where ``Limits.prepare`` makes a server's cgroups: v2, v1 memory, v1 cpu
    return [root / "idsp", root / "memory" / "idsp", root / "cpu" / "idsp"]


def server_dirs(name: str, root: Path = CGROUP_ROOT) -> list[Path]:
    """Every cgroup folder ``Limits.prepare`` can make for ``name``."""
    return [base / name for base in _bases(root)]


def _in_use(top: Path) -> bool:
    """Whether a process is in this cgroup or one below it."""
    for procs in [top / "cgroup.procs", *top.rglob("cgroup.procs")]:
        try:
            if procs.read_text().split():
                return True
        except OSError:
            continue
    return False


def remove_dirs(dirs: list[Path], wait: float = 2.0) -> list[Path]:
    """Remove these cgroups; returns those that stay because processes are still in them.

    A stopped server's kernels and terminals may take a moment to exit after the server
    itself, and the kernel refuses to remove a cgroup that still holds one (EBUSY): wait up
    to ``wait`` seconds for them. Sub-cgroups go first (deepest folder first)."""
    deadline = time.monotonic() + wait
    left: list[Path] = []
    for top in dirs:
        if not top.is_dir():
            continue
        tree = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in [*tree, top]:
            while True:
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    # EBUSY: processes still inside (or just leaving); anything else won't pass
                    if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                        left.append(d)
                        break
                    time.sleep(0.1)
    return [d for d in left if d.is_dir()]


def remove_stale(prefix: str, root: Path = CGROUP_ROOT, wait: float = 0.5) -> tuple[int, list[Path]]:
    """Remove the cgroups of every user server named ``<prefix>...`` that no process is in
    any more (for ``idsp hub down``); returns (how many removed, those still in use)."""
    removed, busy = 0, []
    for base in _bases(root):
        for d in sorted(base.glob(f"{prefix}*")) if base.is_dir() else []:
            # a running server's cgroup is skipped at once: waiting on each would add up
            if not d.is_dir():
                continue
            if _in_use(d) or remove_dirs([d], wait=wait):
                busy.append(d)
            else:
                removed += 1
    return removed, busy


class Limits:
    """The cgroup folders of one user server; ``join()`` runs in the child before exec."""

    def __init__(self, name: str, mem_bytes: int | None, cpu: float | None):
        self.name = name
        self.mem_bytes = mem_bytes
        self.cpu = cpu
        self.mode = cgroup_mode()
        self.dirs: list[Path] = []

    def prepare(self) -> str:
        """Create the cgroups and write the limits; return a description for the log."""
        period = 100_000
        try:
            if self.mode == "v2":
                d = CGROUP_ROOT / "idsp" / self.name
                parent = d.parent
                parent.mkdir(exist_ok=True)
                (parent / "cgroup.subtree_control").write_text("+memory +cpu")
                d.mkdir(exist_ok=True)
                if self.mem_bytes:
                    (d / "memory.max").write_text(str(self.mem_bytes))
                    (d / "memory.swap.max").write_text("0")
                if self.cpu:
                    (d / "cpu.max").write_text(f"{int(self.cpu * period)} {period}")
                self.dirs = [d]
                return f"cgroup v2 {d}"
            if self.mode == "v1":
                mem = CGROUP_ROOT / "memory" / "idsp" / self.name
                mem.mkdir(parents=True, exist_ok=True)
                if self.mem_bytes:
                    (mem / "memory.limit_in_bytes").write_text(str(self.mem_bytes))
                self.dirs = [mem]
                cpu_dir = CGROUP_ROOT / "cpu" / "idsp" / self.name
                if self.cpu and (CGROUP_ROOT / "cpu" / "cgroup.procs").is_file():
                    cpu_dir.mkdir(parents=True, exist_ok=True)
                    (cpu_dir / "cpu.cfs_period_us").write_text(str(period))
                    (cpu_dir / "cpu.cfs_quota_us").write_text(str(int(self.cpu * period)))
                    self.dirs.append(cpu_dir)
                cpu_note = "" if len(self.dirs) > 1 or not self.cpu else ", CPU not enforced"
                return f"cgroup v1 {mem}{cpu_note}"
        except OSError as exc:
            self.mode = "none"
            self.dirs = []
            return f"RLIMIT_DATA, CPU not enforced (cgroups not writable: {exc})"
        return "RLIMIT_DATA, CPU not enforced (no cgroups)"

    def join(self) -> None:
        pid = str(os.getpid())
        for d in self.dirs:
            (d / "cgroup.procs").write_text(pid)
        if not self.dirs and self.mem_bytes:
            resource.setrlimit(resource.RLIMIT_DATA, (self.mem_bytes, self.mem_bytes))

    def memory_limit_bytes(self) -> int | None:
        """What the kernel reports for this server (for tests and the admin)."""
        for d in self.dirs:
            for name in ("memory.max", "memory.limit_in_bytes"):
                f = d / name
                if f.is_file():
                    return int(f.read_text().strip())
        return None

    def remove(self, wait: float = 2.0) -> list[Path]:
        """Remove this server's cgroups; returns those still holding processes."""
        return remove_dirs(self.dirs, wait=wait)
