"""Where a gated run may be made for use: only by the platform's runner on the hub.

Rule: on the hub, a run for use on official data is made by the platform (``idsp run``: the
service checks the gate and its runner runs the approved commit); a user's own process is
refused with a message that points there, whatever it did to the gate in its own memory, and
what it records would count for nothing anyway (the service's audit log never names it).
Inside the runner (the ``<prefix>svc-runner`` account, with ``$IDSP_RUNNER_MLFLOW_RUN`` set by
the runner) every ``case.run`` logs into the one MLflow run the service made and tagged; the
service decided that run's status, so the process neither asks the gate again nor tags it.
The variable alone makes nothing official: in any other account it is refused.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from idsp.errors import Refused

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile

RUN_ENV = "IDSP_RUNNER_MLFLOW_RUN"
RUNNER_ACCOUNT_SUFFIX = "svc-runner"


@dataclass(frozen=True)
class Attached:
    """The service's MLflow run this runner process logs into."""

    run_id: str
    official: bool
    purpose: str
    approval: str


def _account() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def attached() -> Attached | None:
    """The runner's run, when this process is the platform's runner; else None."""
    run_id = os.environ.get(RUN_ENV, "")
    if not run_id:
        return None
    account = _account()
    if not account.endswith(RUNNER_ACCOUNT_SUFFIX):
        raise Refused(
            f"${RUN_ENV} is set, but this process runs as {account}, not as the platform's runner: "
            "official runs are made by the platform (`idsp run`), never by setting a variable",
            fix=f"Unset {RUN_ENV}; run `idsp run --purpose gebruik` in the case for a run for use",
        )
    return Attached(
        run_id=run_id,
        official=os.environ.get("IDSP_RUNNER_OFFICIAL") == "1",
        purpose=os.environ.get("IDSP_RUNNER_PURPOSE", "use"),
        approval=os.environ.get("IDSP_RUNNER_APPROVAL", ""),
    )


def refuse_use_here(case: CaseFile, datasets: Sequence[str], purpose: str) -> None:
    """On the hub, outside the runner: no run for use on official data in this process."""
    from idsp.service import link

    if purpose != "use" or not link.on_hub():
        return
    official = [name for name in datasets if case.dataset(name).official]
    if official:
        raise Refused(
            f"a run for use (gebruik) on official data ({', '.join(official)}) is made by the platform, not in "
            "your own process: the platform service checks the approval itself and its runner runs the approved "
            "commit",
            fix="Commit your work and run `idsp run --purpose gebruik` in the case (a terminal on the hub); here, "
            "use purpose='development' under an approval for development, or synthetic data",
        )
