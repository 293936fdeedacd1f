"""Where the deployment files are: the top-level ``deploy/`` folder a platform admin reads.

Rule: renderers read their fixed parts (the z2jh values overlay, the in-pod hub hook) from
this folder and from nowhere else; the folder is the checkout's ``deploy/``, the copy a
wheel carries (``idsp/_deploy``, pyproject force-include) or one the admin names.
"""

from __future__ import annotations

from pathlib import Path

from idsp.errors import UserError

_PACKAGE = Path(__file__).resolve().parents[1]  # .../idsp
CANDIDATES = (
    _PACKAGE / "_deploy",  # installed wheel
    _PACKAGE.parents[1] / "deploy",  # git checkout: platform/idsp/ -> repository root
)
MARKER = Path("kubernetes") / "values.yaml"


def deploy_root(override: Path | None = None) -> Path:
    """The deployment folder: ``override`` if given, else the installed or checked-out one."""
    if override is not None:
        if not (override / MARKER).is_file():
            raise UserError(
                f"this is not a deployment folder (no {MARKER} inside)",
                where=str(override),
                fix="Pass a copy of the project's deploy/ folder, or leave --deploy-dir out",
            )
        return override
    for root in CANDIDATES:
        if (root / MARKER).is_file():
            return root
    raise UserError(
        "the deployment files are missing from this installation",
        where=" or ".join(str(c) for c in CANDIDATES),
        fix="Reinstall idsp, or pass --deploy-dir with a copy of the project's deploy/ folder",
    )


def read_text(root: Path, relative: str) -> str:
    path = root / relative
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UserError(
            f"cannot read a deployment file: {exc.strerror}",
            where=str(path),
            fix="Restore it from the project's deploy/ folder",
        ) from exc
