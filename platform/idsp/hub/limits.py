"""Memory and CPU limits for a user server, enforced by the kernel.

Rule: the memory limit is always enforced by the kernel, never silently dropped: a cgroup
(v2, else the v1 memory controller) and, where no cgroup is writable, ``RLIMIT_DATA`` (heap
and private mappings). The CPU limit needs a cgroup; the hub log says how each server's
limits are enforced, including "CPU not enforced".
"""

from __future__ import annotations

import os
import resource
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


def cgroup_mode() -> str:
    controllers = CGROUP_ROOT / "cgroup.controllers"
    if controllers.is_file() and "memory" in controllers.read_text():
        return "v2"
    if (CGROUP_ROOT / "memory" / "cgroup.procs").is_file():
        return "v1"
    return "none"


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

    def remove(self) -> None:
        for d in self.dirs:
            try:
                d.rmdir()
            except OSError:
                pass
