"""Case projects: make one from the template, keep it on the newest template, list them.

Rule: nothing is written before every answer is valid and the target folder is free, and
a case that fails half-way is removed again, so a refused or failed ``new`` leaves nothing
behind. ``update`` never commits: the merged result is left in the working tree for the
project lead to review, with conflicts listed. The template itself (versions, questions,
answers) lives in ``idsp.case_template``, the list of cases in ``idsp.case_index``, the
view over all cases in ``idsp.case_fleet``.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from idsp.case import Case
from idsp.case_index import config_or_default, index_path, read_index, record_in_index
from idsp.case_template import (
    TEMPLATE_SOURCE,
    check_answers,
    migrations_between,
    newest_version,
    template_source,
    template_versions,
)
from idsp.errors import CaseError, UserError

if TYPE_CHECKING:  # pragma: no cover
    from idsp.config import PlatformConfig

ANSWERS_FILE = ".copier-answers.yml"
CONFLICT_START = "<<<<<<< "
CONFLICT_END = ">>>>>>> "

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# --------------------------------------------------------------------------- new


@dataclass
class NewCase:
    id: str
    path: Path
    template_version: str
    dvc_remote: str
    index: Path
    checklist: str
    steps: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["index"] = str(self.index)
        return data


def new_case(
    name: str,
    answers: dict[str, Any],
    *,
    dest: Path | None = None,
    cfg: PlatformConfig | None = None,
    root: Path | None = None,
    progress: Progress = _quiet,
    record: bool = True,
) -> NewCase:
    """Make a case from the newest template (``answers``: ``resolve_answers``); ``record=False``
    leaves the case index alone (on the hub the service's registry records it)."""
    import copier
    from copier.errors import CopierError

    if answers.get("slug") != name:
        raise UserError(
            f"the answers are for {answers.get('slug')!r}, not for {name!r}",
            fix="Build them with idsp.case_template.resolve_answers(NAME, ...)",
        )
    check_answers(answers)
    cfg = config_or_default(cfg)
    parent = Path(dest).expanduser() if dest else cfg.path("cases_root")
    target = (parent / name).absolute()
    check_target_free(name, target, cfg)
    version = newest_version(root)
    if shutil.which("git") is None:
        raise UserError("`git` is not installed", fix="Install git and try again")
    progress(f"rendering template {version}")
    made_parent = not parent.exists()
    parent.mkdir(parents=True, exist_ok=True)
    result = NewCase(name, target, version, cfg.dvc_remote_url(), index_path(cfg), "none")
    try:
        with template_source(root) as src:
            copier.run_copy(
                src,
                target,
                data=answers,
                vcs_ref=f"v{version}",
                defaults=True,
                unsafe=True,  # our own template: its migrations are trusted code
                quiet=True,
                overwrite=False,
            )
        result.steps.append(f"rendered template {version}")
        case = Case.open(target)
        result.steps += _init_repositories(case, answers.get("project_lead", ""), cfg, progress)
        # Last before the commit: writing the checklist also writes to the audit log.
        result.checklist = _init_checklist(case, progress)
        if result.checklist != "none":
            result.steps.append(f"checklist written: {result.checklist}")
        _git(target, "add", "-A")
        _git(
            target,
            "commit",
            "-q",
            # The case's own hooks come next; a hook from elsewhere must not block them.
            "--no-verify",
            "-m",
            f"Case {name} ({answers.get('zaaknummer')}) from IDSP case template {version}",
        )
        result.steps.append("first commit")
        progress("installing the pre-commit hooks")
        _run([sys.executable, "-m", "pre_commit", "install"], target, "pre-commit install")
        result.steps.append("pre-commit hooks installed")
        if record:
            record_in_index(_index_entry(case, version), cfg)
            result.steps.append(f"added to the case index {result.index}")
    except CopierError as exc:
        _remove_half_made(target, parent if made_parent else None)
        raise UserError(
            f"rendering template {version} failed ({_copier_reason(exc)}); nothing was kept",
            where=str(target),
            fix="Report this to the platform team",
        ) from None
    except BaseException:
        _remove_half_made(target, parent if made_parent else None)
        raise
    return result


def _init_repositories(case: Case, lead: str, cfg: PlatformConfig, progress: Progress) -> list[str]:
    """git and DVC in a freshly rendered case; returns the steps done."""
    steps = []
    progress("making the git repository")
    _git(case.root, "init", "-q", "-b", "main")
    if _set_fallback_identity(case.root, lead):
        steps.append("set a local git identity (none was configured)")
    progress("initialising DVC")
    remote = cfg.dvc_case_remote(case.id)
    if cfg.dvc_remote_folder() is not None:
        Path(remote).expanduser().mkdir(parents=True, exist_ok=True)
    _dvc(
        case.root,
        ["init", "-q"],
        ["remote", "add", "-d", cfg.dvc.remote_name, remote],
        ["config", "core.autostage", "true"],
    )
    steps.append(f"DVC remote {cfg.dvc.remote_name} -> {remote}")
    return steps


def _remove_half_made(target: Path, parent: Path | None) -> None:
    shutil.rmtree(target, ignore_errors=True)
    if parent is not None:
        with contextlib.suppress(OSError):
            parent.rmdir()


def _copier_reason(exc: Exception) -> str:
    if isinstance(exc, subprocess.CalledProcessError):  # a task or migration script failed
        command = exc.cmd if isinstance(exc.cmd, str) else " ".join(map(str, exc.cmd))
        return f"`{command}` exited with {exc.returncode}"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def check_target_free(name: str, target: Path, cfg: PlatformConfig | None = None) -> None:
    """Refuse an existing folder or a case id the index already knows."""
    if target.exists():
        raise CaseError(
            "the folder already exists",
            where=str(target),
            fix="Choose another NAME, another --dest, or remove the folder",
        )
    for entry in read_index(cfg):
        if entry.get("id") == name and Path(str(entry.get("path", ""))).exists():
            raise CaseError(
                f"a case named {name!r} already exists at {entry['path']}",
                where=str(index_path(cfg)),
                fix="Choose another NAME; case names are unique on the platform",
            )


def _index_entry(case: Case, version: str) -> dict[str, Any]:
    spec = case.spec
    return {
        "id": spec.id,
        "title": spec.title,
        "zaaknummer": spec.zaaknummer,
        "inspectorates": list(spec.inspectorates),
        "case_type": spec.case_type,
        "path": str(case.root),
        "template_version": version,
        "created": str(spec.created or date.today()),
    }


def _init_checklist(case: Case, progress: Progress) -> str:
    from legal_ethics import init_checklist

    progress("writing the checklist")
    path = init_checklist(case)
    return str(Path(path).relative_to(case.root))


def _set_fallback_identity(repo: Path, name: str) -> bool:
    have = {
        key: subprocess.run(
            ["git", "config", key], cwd=repo, capture_output=True, text=True
        ).stdout.strip()
        for key in ("user.name", "user.email")
    }
    if all(have.values()):
        return False
    user = getpass.getuser()
    if not have["user.name"]:
        _git(repo, "config", "user.name", name or user)
    if not have["user.email"]:
        _git(repo, "config", "user.email", f"{user}@localhost")
    return True


# --------------------------------------------------------------------------- update


@dataclass
class UpdateResult:
    id: str
    path: Path
    from_version: str
    to_version: str
    changed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    migrations: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        return self.from_version == self.to_version

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["up_to_date"] = self.up_to_date
        return data


def read_answers(root: Path) -> dict[str, Any]:
    path = root / ANSWERS_FILE
    if not path.is_file():
        raise CaseError(
            "this case was not made from the IDSP case template (no .copier-answers.yml)",
            where=str(root),
            fix="Only cases made with `idsp case new` can be updated",
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise CaseError(
            f"not valid YAML ({exc})", where=str(path), fix="Restore it from git"
        ) from None
    return data if isinstance(data, dict) else {}


def case_template_version(root: Path) -> str | None:
    commit = read_answers(root).get("_commit")
    if not commit:
        return None
    return str(commit).removeprefix("v")


def update_case(
    path: Path | None = None,
    *,
    to_version: str | None = None,
    cfg: PlatformConfig | None = None,
    root: Path | None = None,
    progress: Progress = _quiet,
) -> UpdateResult:
    """Bring a case to a newer template version with copier's three-way merge.

    Local edits stay; template changes arrive; where both touched the same lines the file
    gets conflict markers and is listed in ``conflicts``. The result is left uncommitted
    for review.
    """
    from packaging.version import Version

    case = Case.open(path)
    current, target = _update_versions(case, to_version, root)
    result = UpdateResult(case.id, case.root, current, target)
    if Version(target) < Version(current):
        raise CaseError(
            f"the case is on template {current}, newer than {target}; downgrades are not supported",
            where=str(case.root),
        )
    if result.up_to_date:
        return result
    dirty = _git(case.root, "status", "--porcelain").splitlines()
    if dirty:
        shown = ", ".join(line[3:] for line in dirty[:5]) + (" ..." if len(dirty) > 5 else "")
        raise CaseError(
            f"the case has uncommitted changes ({shown})",
            where=str(case.root),
            fix="Commit them first (git add ... && git commit), then run `idsp case update` again",
        )
    import copier

    result.migrations = migrations_between(current, target, root)
    progress(f"merging template {current} -> {target}")
    # copier finds the template through the answers file's relative `_src_path`, which
    # template_source() makes resolve by working from its temporary folder.
    from copier.errors import CopierError

    try:
        with template_source(root), _child_output_to_stderr():
            copier.run_update(
                case.root,
                vcs_ref=f"v{target}",
                defaults=True,
                overwrite=True,
                unsafe=True,  # our own template: its migrations are trusted code
                quiet=True,
                skip_answered=True,
                conflict="inline",
            )
    except CopierError as exc:
        raise UserError(
            f"the update to template {target} failed half-way ({_copier_reason(exc)})",
            where=str(case.root),
            fix="Your committed work is safe: undo the half-applied update with "
            "`git checkout -- . && git clean -fd`, and report this to the platform team",
        ) from None
    result.changed = _changed_files(case.root)
    result.conflicts = _conflicted(case.root, result.changed)
    with contextlib.suppress(CaseError):
        record_in_index(_index_entry(Case.open(case.root), target), cfg)
    return result


def _update_versions(case: Case, to_version: str | None, root: Path | None) -> tuple[str, str]:
    """The case's template version and the one to update to, both known to this idsp."""
    answers = read_answers(case.root)
    current = case_template_version(case.root)
    versions = [tv.version for tv in template_versions(root)]
    target = to_version or versions[-1]
    if current is None:
        raise CaseError(
            "the answers file does not say which template version made the case (no _commit)",
            where=str(case.root / ANSWERS_FILE),
            fix="Restore .copier-answers.yml from git",
        )
    if answers.get("_src_path") != TEMPLATE_SOURCE:
        raise CaseError(
            f"the case was made from another template source ({answers.get('_src_path')!r})",
            where=str(case.root / ANSWERS_FILE),
            fix=f"Only cases made with `idsp case new` (source {TEMPLATE_SOURCE}) can be updated",
        )
    for wanted, what in ((current, "the case's"), (target, "the requested")):
        if wanted not in versions:
            raise CaseError(
                f"{what} template version {wanted} is not known to this idsp (known: {', '.join(versions)})",
                where=str(case.root / ANSWERS_FILE),
                fix="Upgrade idsp to a release that has this template version",
            )
    return current, target


@contextlib.contextmanager
def _child_output_to_stderr():
    """Send what migration scripts print to stderr: stdout is for our result (--json)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _changed_files(repo: Path) -> list[str]:
    out = _git(repo, "status", "--porcelain", "--untracked-files=all")
    return [line[3:].strip('"') for line in out.splitlines() if line.strip()]


def _conflicted(repo: Path, changed: list[str]) -> list[str]:
    conflicts = []
    for rel in changed:
        path = repo / rel
        if rel.endswith(".rej"):
            conflicts.append(rel)
            continue
        if not path.is_file():
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (UnicodeDecodeError, OSError):
            continue
        if any(ln.startswith(CONFLICT_START) for ln in lines) and any(
            ln.startswith(CONFLICT_END) for ln in lines
        ):
            conflicts.append(rel)
    return conflicts


# --------------------------------------------------------------------------- processes


def _run(cmd: list[str], cwd: Path, what: str) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    except FileNotFoundError:
        raise UserError(f"`{cmd[0]}` is not installed", fix=f"Install it to run {what}") from None
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise UserError(
            f"`{what}` failed: {' '.join(detail[-3:]) or f'exit {proc.returncode}'}",
            where=str(cwd),
            fix="Fix the cause above and run the command again",
        )
    return proc.stdout


def _git(repo: Path, *args: str) -> str:
    return _run(["git", "-c", "commit.gpgsign=false", *args], repo, f"git {args[0]}")


# One Python process for several dvc commands: importing dvc costs seconds each time.
_DVC_SCRIPT = """
import json, sys
from dvc.cli import main
for args in json.loads(sys.argv[1]):
    code = main(args)
    if code:
        sys.exit(code)
"""


def _dvc(repo: Path, *commands: list[str]) -> str:
    what = "; ".join("dvc " + " ".join(c[:2]) for c in commands)
    return _run([sys.executable, "-c", _DVC_SCRIPT, json.dumps(list(commands))], repo, what)


__all__ = [
    "NewCase",
    "UpdateResult",
    "case_template_version",
    "check_target_free",
    "new_case",
    "read_answers",
    "update_case",
]
