"""IDSP, the Inspecties-DataSciencePlatform: the library every case notebook imports.

Rule: importing ``idsp`` is cheap. Heavy libraries (pandas, Great Expectations, MLflow,
DVC, scikit-learn) are imported only by the module that needs them, when it is used; the
public names below are resolved on first use, by plain imports in ``__getattr__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from idsp.defaults import VERSION as __version__

_NAMES = ("Case", "load_config", "read_table", "write_table")
_SUBMODULES = ("case", "config", "data", "errors", "privacy", "quality", "tracking")

__all__ = ["__version__", *_NAMES, *_SUBMODULES]

if TYPE_CHECKING:  # pragma: no cover
    from idsp import case, config, data, errors, privacy, quality, tracking  # noqa: F401
    from idsp.case import Case  # noqa: F401
    from idsp.config import load_config  # noqa: F401
    from idsp.data import read_table, write_table  # noqa: F401


def __getattr__(name: str) -> Any:
    # One plain import per name, so a renamed module or function fails here, loudly,
    # instead of behind a string; each branch loads only what it names. Submodules are
    # imported as ``import idsp.x``: ``from idsp import x`` would ask this hook again first.
    value: Any
    match name:
        case "Case":
            from idsp.case import Case as value
        case "load_config":
            from idsp.config import load_config as value
        case "read_table":
            from idsp.data import read_table as value
        case "write_table":
            from idsp.data import write_table as value
        case "case":
            import idsp.case as value
        case "config":
            import idsp.config as value
        case "data":
            import idsp.data as value
        case "errors":
            import idsp.errors as value
        case "privacy":
            import idsp.privacy as value
        case "quality":
            import idsp.quality as value
        case "tracking":
            import idsp.tracking as value
        case _:
            raise AttributeError(f"module 'idsp' has no attribute {name!r}")
    return value
