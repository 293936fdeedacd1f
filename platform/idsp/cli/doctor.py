"""`idsp doctor`: check this machine and user against the platform requirements."""

from __future__ import annotations

import typer

from idsp.cli._common import CONFIG_OPTION, JSON_OPTION, console, load, print_json
from idsp.errors import CaseError, Refused

ICONS = {"pass": "[green]✔ pass[/]", "fail": "[red]✘ fail[/]", "n/a": "[dim]– n/a[/]",
         "later": "[cyan]◌ later[/]"}


def register(app: typer.Typer) -> None:
    @app.command("doctor")
    def doctor(config: str = CONFIG_OPTION, as_json: bool = JSON_OPTION) -> None:
        """Check the inspectorates' platform requirements here; exit 1 when a must fails."""
        from rich.table import Table

        from idsp.case import find_case_root
        from idsp.doctor import must_failures, run_checks

        cfg = load(config)
        try:
            case_root = find_case_root()
        except CaseError:
            case_root = None
        results = run_checks(cfg, case_root)
        failed = must_failures(results)
        if as_json:
            print_json({"ok": not failed, "case": str(case_root) if case_root else None,
                        "results": [r.as_dict() for r in results]})
        else:
            table = Table(title="IDSP platform requirements", title_justify="left")
            for col in ("", "id", "requirement", "level", "detail"):
                table.add_column(col)
            for r in results:
                level = "[bold]must[/]" if r.level == "must" else "should"
                table.add_row(ICONS[r.status], r.id, r.title, level, r.detail)
            console().print(table)
        if failed:
            raise Refused(
                f"{len(failed)} must-requirement(s) not met: " + ", ".join(r.id for r in failed),
                fix="See the detail column for what to do",
            )
