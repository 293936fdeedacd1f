"""What a user server runs: ``jupyterhub-singleuser``, minus start-up work nobody asked for.

Rule: this changes *when* work is done, never what the server can do or check. Every user
server imports jsonschema (through Jupyter's event logger), whose optional IRI format check
imports ``rfc3987_syntax``, which builds an Earley parser for RFC 3987 at import time: about
1.1 s of CPU per server start, half of the whole start on this machine, for a check that
Jupyter never uses while starting. Here that import is deferred: the parser is built the
first time an IRI is actually validated, and then behaves exactly as before.

It also holds the JupyterLab settings the platform fixes for every user
(:func:`install_lab_overrides`): written by ``idsp hub up`` into the platform environment,
never into a user's home.

Run as ``python -m idsp.hub.singleuser [jupyterhub-singleuser arguments]``.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shlex
import sys
import threading
import types
from pathlib import Path

# module -> the functions others import from it by name (``from m import f`` binds at once,
# so those names must exist on the stand-in and load the real module only when called).
DEFERRED: dict[str, tuple[str, ...]] = {"rfc3987_syntax": ("is_valid_syntax", "parse")}


class _Deferred(types.ModuleType):
    """Stands in for a module until one of its names is used, then forwards to it."""

    def __init__(self, name: str, functions: tuple[str, ...], path: list[str] | None):
        super().__init__(name)
        if path is not None:  # a package: its submodules stay importable meanwhile
            self.__path__ = path
        self._lock = threading.Lock()
        self._real: types.ModuleType | None = None
        for fname in functions:
            setattr(self, fname, self._forward(fname))

    def _forward(self, fname: str):
        def call(*args, **kwargs):
            return getattr(self._load(), fname)(*args, **kwargs)

        call.__name__ = call.__qualname__ = fname
        return call

    def _load(self) -> types.ModuleType:
        with self._lock:
            if self._real is None:
                if sys.modules.get(self.__name__) is self:
                    del sys.modules[self.__name__]
                self._real = importlib.import_module(self.__name__)
            return self._real

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._load(), name)


def defer_imports(modules: dict[str, tuple[str, ...]] = DEFERRED) -> list[str]:
    """Put a stand-in for each installed, not yet imported module; returns those deferred."""
    deferred = []
    for name, functions in modules.items():
        spec = None if name in sys.modules else importlib.util.find_spec(name)
        if spec is None:
            continue
        path = list(spec.submodule_search_locations) if spec.submodule_search_locations is not None else None
        sys.modules[name] = _Deferred(name, functions, path)
        deferred.append(name)
    return deferred


# JupyterLab defaults for every user server. The news prompt ("Would you like to receive
# official Jupyter news?") would greet each new user and, once answered yes, make their
# browser fetch a feed from the internet: the platform answers no for everyone.
LAB_OVERRIDES: dict[str, dict] = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false"}}


def lab_overrides_file(prefix: Path | None = None) -> Path:
    """JupyterLab's app-level ``overrides.json`` of the environment the servers run from."""
    return Path(prefix or sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


def install_lab_overrides(prefix: Path | None = None) -> Path:
    """Merge :data:`LAB_OVERRIDES` into ``overrides.json`` (other settings there are kept);
    the file is written only when something changes, readable by all, writable by its owner."""
    path = lab_overrides_file(prefix)
    try:
        current = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        current = {}  # an unreadable file would make JupyterLab ignore it anyway
    if not isinstance(current, dict):
        current = {}
    merged = {**current, **{k: {**current.get(k, {}), **v} for k, v in LAB_OVERRIDES.items()}}
    if merged != current:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.chmod(path, 0o644)
    return path



def terminal_command(bin_dir: Path) -> list[str]:
    """The shell a JupyterLab terminal starts. Without a terminal of its own the server would
    run a login shell, and Debian's /etc/profile resets PATH to the system's: the platform's
    ``idsp``, ``python`` and ``dvc`` would be gone. So: the profile first, then the platform's
    environment in front, then an interactive shell that reads the user's own ~/.bashrc."""
    return ["/bin/bash", "-c", f'. /etc/profile; export PATH={shlex.quote(str(bin_dir))}:"$PATH"; exec /bin/bash -i']


def main() -> int:
    defer_imports()
    from jupyterhub.singleuser import main as singleuser_main

    return singleuser_main()


if __name__ == "__main__":
    sys.exit(main())
