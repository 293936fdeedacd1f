"""Errors that reach a person.

Rule: every error a user can cause is an ``IdspError`` whose text is one readable
paragraph — what was wrong, where (file, line, field), and what to do next — and whose
``exit_code`` is 2 for bad usage or bad input and 1 when the answer is simply "no"
(gate refused, identifiers found, suite failed). The CLI prints these without traceback;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class IdspError(Exception):
    """Base of every error meant for a person rather than a developer."""

    exit_code = 2

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None):
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = self.what.rstrip(".")
        if self.where:
            text = f"{self.where}: {text}"
        text += "."
        if self.fix:
            text += " " + self.fix.rstrip(".") + "."
        return text


class UserError(IdspError):
    """Bad usage or bad input (exit 2)."""


class ConfigError(UserError):
    """The platform configuration (platform.yaml or IDSP_* variables) is invalid."""


class DataError(UserError):
    """A data file cannot be read as asked; ``where`` names file, line and column."""


class KeyStoreError(UserError):
    """A pseudonymisation key is missing, unsafe or unreadable."""


class CaseError(UserError):
    """No case project here, or its case.yaml is invalid."""


class Refused(IdspError):
    """The answer is no (exit 1): a check ran properly and said no."""

    exit_code = 1


class PIIFound(Refused):
    """Raw identifiers were found where they must not be."""


class QualityError(Refused):
    """A data-quality suite failed in fail-fast mode."""


class GateRefused(Refused):
    """The run gate refused a run; ``reasons`` says why and who must act."""

    def __init__(self, what: str, *, reasons: list[str] | None = None, **kw):
        self.reasons = list(reasons or [])
        if self.reasons and "fix" not in kw:
            kw["fix"] = "Reasons: " + "; ".join(self.reasons)
        super().__init__(what, **kw)


class TrackingLoginRefused(UserError):
    """The MLflow server answered 401 (no or a wrong login) or 403 (not allowed)."""


def tracking_login_refused(exc: BaseException, uri: str | None = None) -> TrackingLoginRefused | None:
    """``exc`` as a ``TrackingLoginRefused`` if it is MLflow's 401 or 403, else None.

    Read from the exception itself (MLflow's ``get_http_status_code()``, or the HTTP
    response an artifact upload carries), so this module needs no MLflow import."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status not in (401, 403) and callable(getattr(exc, "get_http_status_code", None)):
        status = exc.get_http_status_code()  # type: ignore[attr-defined]
    where = f"MLflow at {uri}" if uri else "MLflow"
    if status == 401:
        return TrackingLoginRefused(
            "MLflow refused the login (401): the user name and password in "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD are missing or not this "
            "server's",
            where=where,
            fix="On the hub, the hub sets both when your server starts: restart your server "
            "(hub home page, Stop My Server, then Start My Server) and run again from a new "
            "terminal; without a hub, set both to your MLflow account",
        )
    if status == 403:
        return TrackingLoginRefused(
            "MLflow refused access (403): your MLflow account may not use this case's experiment",
            where=where,
            fix="Ask the case's project lead to make you a member of the case, then restart "
            "your server",
        )
    return None
