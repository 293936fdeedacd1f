"""The environment a person on the hub has: the platform's own tools first on PATH."""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = str(Path(sys.executable).parent)


def tool_env(**extra: str) -> dict[str, str]:
    """os.environ without GIT_* variables, the venv's bin first on PATH, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env
