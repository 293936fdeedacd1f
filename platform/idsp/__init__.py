"""IDSP, the Inspecties-DataSciencePlatform: the library every case notebook imports.

Rule: importing ``idsp`` is cheap. Heavy libraries (pandas, Great Expectations, MLflow,
DVC, scikit-learn) are imported only by the module that needs them, when it is used; the
public names below are resolved lazily.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Case": ("idsp.case", "Case"),
    "load_config": ("idsp.config", "load_config"),
    "read_table": ("idsp.data", "read_table"),
    "write_table": ("idsp.data", "write_table"),
}
_SUBMODULES = {"privacy", "data", "quality", "tracking", "config", "errors", "case"}

__all__ = ["__version__", *_LAZY, *sorted(_SUBMODULES)]

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case import Case  # noqa: F401
    from idsp.config import load_config  # noqa: F401
    from idsp.data import read_table, write_table  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    if name in _SUBMODULES:
        return importlib.import_module(f"idsp.{name}")
    raise AttributeError(f"module 'idsp' has no attribute {name!r}")
