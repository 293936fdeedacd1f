"""`idsp case`: make a case project, bring it to the newest template, see the fleet.

Rule: parse and print only; the work is in ``idsp.case_projects``. copier and anything
heavy are imported inside the commands, so ``idsp case --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from idsp.cli._common import JSON_OPTION, console_err, load, print_json, spinner
from idsp.errors import Refused, UserError

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_fleet import CaseStatus

app = typer.Typer(
    help="Case projects: make one from the template, update it, see which lag behind.",
    no_args_is_help=True,
)


def console():
    # A fresh console per command: it must write to the sys.stdout of *this* call (the
    # in-process tests swap it), not to the one of the first call.
    from rich.console import Console

    return Console(file=sys.stdout)


def _parse_data(pairs: list[str]) -> dict[str, str]:
    data: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(
                f"--data {pair!r} is not KEY=VALUE",
                where="--data",
                fix="Write it as --data zaaknummer=ILT-2026-004512",
            )
        data[key.strip()] = value
    return data


def _ask(question, default, problem):
    from rich.prompt import Confirm, Prompt

    if problem:
        console_err().print(f"[red]{problem}[/]", highlight=False)
    if question.type == "bool":
        return Confirm.ask(question.help, default=bool(default), console=console_err())
    if question.multiselect:
        shown = ",".join(default or [])
        return Prompt.ask(
            f"{question.help} ({', '.join(question.choices)}; comma-separated)",
            default=shown or None,
            console=console_err(),
        )
    if question.choices:
        return Prompt.ask(
            question.help,
            choices=list(question.choices),
            default=default,
            console=console_err(),
        )
    return Prompt.ask(question.help, default=default, console=console_err())


@app.command("new")
def new(
    name: str = typer.Argument(..., help="Short name of the case: also its folder and id."),
    case_type: str = typer.Option(None, "--type", "-t", help="generic or ce_markering."),
    dest: Path = typer.Option(
        None,
        "--dest",
        "-d",
        help="Folder to make the case in (default: the platform's cases_root).",
    ),
    defaults: bool = typer.Option(
        False, "--defaults", help="Take the default for every answer not given; ask nothing."
    ),
    data: list[str] = typer.Option(
        [], "--data", help="An answer as KEY=VALUE, e.g. zaaknummer=ILT-2026-004512 (repeatable)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Make a case project: template, git, DVC with the platform remote, hooks, index.

    Answers (--data KEY=VALUE): title, zaaknummer (required), inspectorates (comma-separated),
    project_lead, case_type, personal_data (yes/no), risk_profiling (none, companies,
    natural_persons), data_sources (comma-separated). Missing answers are asked on a
    terminal, or take their defaults with --defaults. Nothing is written until all are valid.
    """
    from idsp import case_projects, case_template
    from idsp.service.link import on_hub

    given = _parse_data(data)
    if case_type is not None:
        given["case_type"] = case_type
    if on_hub():  # the platform service makes it (its project-lead group, its root agent)
        _new_on_hub(name, given, dest, as_json)
        return
    interactive = not defaults and not as_json and sys.stdin.isatty()
    answers = case_template.resolve_answers(name, given, ask=_ask if interactive else None)
    with spinner(not as_json) as progress:
        made = case_projects.new_case(name, answers, dest=dest, cfg=load(), progress=progress)
    if as_json:
        print_json(made.as_dict())
        return
    out = console()
    out.print(f"[bold green]case {made.id}[/] made in {made.path}", highlight=False)
    for step in made.steps:
        out.print(f"  - {step}", highlight=False)
    if made.checklist == "none":
        out.print("  - no checklist written (legal_ethics is not installed)", highlight=False)
    out.print(
        f"Next: cd {made.path} and read README.md (first: fill in case.yaml).", highlight=False
    )


def _new_on_hub(name: str, given: dict[str, str], dest: Path | None, as_json: bool) -> None:
    from idsp.service.case_client import make_case
    from idsp.service.link import hub_service

    if dest is not None:
        raise UserError("--dest does not go with the hub: the platform keeps every case in its cases folder",
                        where="--dest", fix="Leave --dest out")  # fmt: skip
    with spinner(not as_json) as progress:
        progress(f"the platform service makes case {name}")
        made = make_case(hub_service(), name, given)
    if as_json:
        print_json(made)
        return
    out = console()
    out.print(
        f"[bold green]case {made['id']}[/] made in {made['path']} (by the platform service)",
        highlight=False,
    )
    for step in made.get("steps", []):
        out.print(f"  - {step}", highlight=False)
    if made.get("experiment_id"):
        out.print(
            f"  - MLflow experiment {made['id']} (id {made['experiment_id']})", highlight=False
        )
    for warning in made.get("warnings", []):
        out.print(f"  [yellow]warning[/]: {warning}", highlight=False)
    out.print(
        f"Next: open ~/cases/{made['id']} and read README.md (first: fill in case.yaml).",
        highlight=False,
    )


members_app = typer.Typer(
    help="Who works on a case: list, add, remove (owners only, on the hub).", no_args_is_help=True
)
app.add_typer(members_app, name="members")


def _members(case_id: str, change: str | None, user: str, as_json: bool) -> None:
    from idsp.service import case_client
    from idsp.service.link import hub_service, on_hub

    if on_hub():
        service = hub_service()
        if change == "add":
            result = case_client.add_member(service, case_id, user)
        elif change == "remove":
            result = case_client.remove_member(service, case_id, user)
        else:
            result = case_client.members(service, case_id)
            result["mode"] = "hub"
    else:
        result = case_client.local_members(case_id, change, user, cfg=load())
    if as_json:
        print_json(result)
        return
    out = console()
    local = result.get("mode") == "in-process"
    if change == "add":
        out.print(
            f"{user} is now a member of {case_id}"
            + ("" if local else "; their server has access at once"),
            highlight=False,
        )
    elif change == "remove":
        out.print(
            f"{user} is no longer a member of {case_id}"
            + ("" if local else "; their access is gone"),
            highlight=False,
        )
    if "owners" in result:
        out.print(f"owners: {', '.join(result['owners']) or '-'}", highlight=False)
    out.print(f"members: {', '.join(result.get('members') or []) or '-'}", highlight=False)
    if result.get("note"):
        console_err().print(f"note: {result['note']}", highlight=False)


@members_app.command("list")
def members_list(
    case_id: str = typer.Argument(..., help="The case id."), as_json: bool = JSON_OPTION
) -> None:
    """The owners and members of a case (you must own it)."""
    _members(case_id, None, "", as_json)


@members_app.command("add")
def members_add(
    case_id: str = typer.Argument(..., help="The case id."),
    user: str = typer.Argument(..., help="The hub user name to add."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a member: their running server can open the case at once (~/cases/ID)."""
    _members(case_id, "add", user, as_json)


@members_app.command("remove")
def members_remove(
    case_id: str = typer.Argument(..., help="The case id."),
    user: str = typer.Argument(..., help="The hub user name to remove."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Remove a member: their access ends at once, running server included."""
    _members(case_id, "remove", user, as_json)


@app.command("update")
def update(
    path: Path = typer.Argument(
        None, help="The case project (default: the one you are in); with --all: a folder of cases."
    ),
    to: str = typer.Option(None, "--to", help="Template version to go to (default: the newest)."),
    every: bool = typer.Option(
        False, "--all", help="Update every case that is behind (the case index, or PATH)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Bring a case to the newest template: three-way merge, migrations, local edits kept.

    Exit 1 when conflicts need a person (the files are listed and marked), or, with --all,
    when any case could not be updated.
    """
    from idsp import case_fleet, case_projects

    if every:
        if to:
            raise UserError("--to and --all do not go together", fix="Use --to for one case")
        with spinner(not as_json) as progress:
            items = case_fleet.update_fleet(path, cfg=load(), progress=progress)
        if as_json:
            print_json([item.as_dict() for item in items])
        else:
            _print_fleet_update(items)
        if any(item.refused or (item.result and item.result.conflicts) for item in items):
            raise typer.Exit(Refused.exit_code)
        return
    with spinner(not as_json) as progress:
        result = case_projects.update_case(path, to_version=to, cfg=load(), progress=progress)
    if as_json:
        print_json(result.as_dict())
    else:
        _print_update(result)
    if result.conflicts:
        raise typer.Exit(Refused.exit_code)


def _print_fleet_update(items) -> None:
    out = console()
    if not items:
        out.print("every case is on the newest template; nothing to do", highlight=False)
        return
    for item in items:
        if item.refused:
            out.print(f"[red]not updated[/] {item.id}: {item.refused}", highlight=False)
        elif item.result.conflicts:
            out.print(
                f"[yellow]conflicts[/] {item.id} ({item.path}): "
                + ", ".join(item.result.conflicts),
                highlight=False,
            )
        else:
            r = item.result
            out.print(
                f"[green]updated[/] {item.id}: {r.from_version} -> {r.to_version}, "
                f"{len(r.changed)} file(s) changed; review and commit in {item.path}",
                highlight=False,
            )


def _print_update(result) -> None:
    out = console()
    if result.up_to_date:
        out.print(
            f"case {result.id} is on the newest template ({result.to_version}); nothing to do",
            highlight=False,
        )
        return
    out.print(
        f"case {result.id}: template {result.from_version} -> {result.to_version}", highlight=False
    )
    for migration in result.migrations:
        out.print(f"  migration {migration}", highlight=False)
    out.print(f"  {len(result.changed)} file(s) changed:", highlight=False)
    for rel in result.changed:
        mark = "[bold red]CONFLICT[/] " if rel in result.conflicts else ""
        out.print(f"    {mark}{rel}", highlight=False)
    if result.conflicts:
        out.print(
            f"[bold red]{len(result.conflicts)} file(s) have conflicts[/]: open them and choose "
            "between the blocks marked `<<<<<<< before updating` and `>>>>>>> after updating`, "
            "then `git add` them and commit.",
            highlight=False,
        )
    else:
        out.print(
            "No conflicts. Review with `git diff`, then commit: "
            f'git commit -am "Case template {result.to_version}"',
            highlight=False,
        )


@app.command("status")
def status(
    root: Path = typer.Argument(
        None, help="Folder to scan for case projects (default: the platform's case index)."
    ),
    runs: bool = typer.Option(
        True, "--runs/--no-runs", help="Ask the tracking server for each case's last run."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """The fleet at a glance: template version against the newest, checklist, last run."""
    from idsp import case_fleet, case_template

    cases = case_fleet.fleet_status(root, cfg=load(), runs=runs)
    newest = case_template.newest_version()
    if as_json:
        print_json({"newest_template": newest, "cases": [c.as_dict() for c in cases]})
        return
    from rich.table import Table

    out = console()
    if not cases:
        where = str(root) if root else "the case index"
        out.print(f"no case projects in {where}", highlight=False)
        return
    table = Table(title=f"Case projects (newest template {newest})", title_justify="left")
    for column in ("case", "template", "checklist", "last run", "path"):
        table.add_column(column, overflow="fold")
    for case in cases:
        version = case.template_version or "?"
        if case.problem:
            version = f"[red]{case.problem}[/]"
        elif case.behind:
            version = f"[yellow]{version} (behind)[/]"
        table.add_row(case.id, version, case.checklist, _run_text(case), case.path)
    out.print(table)
    notes = {c.last_run_note for c in cases if not c.last_run and " (" in c.last_run_note}
    for note in sorted(notes):
        out.print(f"last run: {note}", highlight=False, soft_wrap=True)
    behind = [c for c in cases if c.behind]
    if behind:
        out.print(
            f"{len(behind)} case(s) behind template {newest}; bring each up with "
            "`idsp case update PATH`:",
            highlight=False,
        )
        for case in behind:
            out.print(f"  {case.path}", highlight=False, soft_wrap=True)


def _run_text(case: CaseStatus) -> str:
    run = case.last_run
    if not run:
        # The reason in brackets can be long; it is printed once under the table.
        return case.last_run_note.split(" (", 1)[0]
    started = run.get("start_time")
    if isinstance(started, int | float):  # MLflow gives milliseconds since the epoch
        from datetime import UTC, datetime

        started = datetime.fromtimestamp(started / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [str(p) for p in (run.get("run_id"), started, run.get("status")) if p]
    if run.get("official") is not None:
        parts.append("official" if run["official"] else "not official")
    return " ".join(parts) or str(run)
