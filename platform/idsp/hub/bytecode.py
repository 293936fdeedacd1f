"""Byte-compile what user servers and the hub import, once, as root.

Rule: user servers run as unprivileged accounts that cannot write ``__pycache__`` into the
root-owned environment (and ``PYTHONDONTWRITEBYTECODE`` may be set), so without this every
server start recompiles JupyterLab, the Jupyter server and ipykernel from source. Compiling
is idempotent: files whose ``.pyc`` is current are skipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

# What a user server and its first kernel import, plus the hub itself.
MODULES = [
    "jupyterhub.app",
    "jupyterhub.singleuser",
    "jupyter_server.serverapp",
    "jupyterlab.labapp",
    "jupyterlab_server",
    "jupyter_lsp",
    "jupyter_server_terminals",
    "notebook_shim",
    "jupytext",
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "nativeauthenticator",
    "jupyterhub_idle_culler",
    "idsp",
    "idsp.hub.singleuser",
]

_LIST = """
import importlib, json, sys
for m in {modules!r}:
    try:
        importlib.import_module(m)
    except Exception:
        pass
files = set()
for mod in list(sys.modules.values()):
    f = getattr(mod, "__file__", None)
    if f and f.endswith(".py"):
        files.add(f)
print(json.dumps(sorted(files)))
"""


def _stamp() -> str:
    import sysconfig

    site = Path(sysconfig.get_paths()["purelib"])
    return f"{sys.prefix}:{site.stat().st_mtime_ns}"


def precompile(stamp_file: Path | None = None, python: str | None = None) -> tuple[int, float]:
    """Compile the modules the hub and user servers import; returns (files, seconds).

    ``stamp_file`` remembers the environment it last compiled, so later starts cost nothing
    until a package is installed or removed."""
    import importlib.util
    import py_compile

    t0 = time.monotonic()
    if stamp_file is not None and stamp_file.exists() and stamp_file.read_text() == _stamp():
        return 0, 0.0
    python = python or sys.executable
    prefix = Path(sys.prefix).resolve()
    proc = subprocess.run(
        [python, "-c", _LIST.format(modules=MODULES)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        return 0, time.monotonic() - t0
    compiled = 0
    for name in json.loads(proc.stdout.strip().splitlines()[-1]):
        path = Path(name)
        if prefix not in path.resolve().parents:
            continue  # only the platform's environment, never the user's files
        cache = Path(importlib.util.cache_from_source(str(path)))
        try:
            if cache.exists() and cache.stat().st_mtime >= path.stat().st_mtime:
                continue
            py_compile.compile(str(path), cfile=str(cache), doraise=True)
            cache.chmod(0o644)
            compiled += 1
        except (OSError, py_compile.PyCompileError):
            continue
    if stamp_file is not None:
        try:
            stamp_file.write_text(_stamp())
        except OSError:
            pass
    return compiled, time.monotonic() - t0
