"""The case template: its versions, its questions, and the answers that fill it in.

Rule: template versions are release layers in ``templates/case/versions/<version>/``, each
holding only what changed since the layer before; a released layer is never edited. For
copier they are turned into a throw-away git repository with one tag per version, because
copier takes versions from git tags and its three-way update needs the old version too
(docs/decisions/case-template-versions.md). Answers are checked with the case.yaml schema
itself before anything is written.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from idsp.case_file import INSPECTORATES, CaseSpec
from idsp.defaults import GENERIC_CASE_TYPE
from idsp.errors import UserError

# Where the materialised template repository sits, relative to the working directory
# during a copier call. copier records this string as `_src_path` in the answers file and
# needs it again at update time; a relative path keeps it the same on every machine.
TEMPLATE_SOURCE = "idsp-templates/case"
TEMPLATE_ENV = "IDSP_CASE_TEMPLATE"
REMOVED_FILE = "REMOVED"
# version -> sha256 of each released layer; a layer not listed is still being written
RELEASED_FILE = "released.yaml"
SOURCE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# Questions idsp answers itself: never asked, never taken from --data.
_OWN_ANSWERS = {"slug", "created"}
# The throw-away template repository gets a fixed author, whatever the user configured.
_TEMPLATE_AUTHOR = ("-c", "user.name=IDSP case template", "-c", "user.email=idsp@localhost")


@dataclass(frozen=True)
class TemplateVersion:
    version: str
    path: Path

    @property
    def tag(self) -> str:
        return f"v{self.version}"


@dataclass(frozen=True)
class Question:
    name: str
    help: str
    type: str = "str"
    choices: tuple[str, ...] = ()
    default: Any = None
    multiselect: bool = False


def template_root() -> Path:
    """The case template folder: $IDSP_CASE_TEMPLATE, the installed wheel, or the checkout."""
    override = os.environ.get(TEMPLATE_ENV)
    if override:
        root = Path(override).expanduser()
        if not (root / "versions").is_dir():
            raise UserError(
                "this is not a case template folder (no versions/ inside)",
                where=f"{TEMPLATE_ENV}={override}",
                fix=f"Point {TEMPLATE_ENV} at a folder like templates/case, or unset it",
            )
        return root
    package_dir = Path(__file__).resolve().parent
    candidates = (
        package_dir / "_templates" / "case",  # installed wheel (pyproject force-include)
        package_dir.parents[1] / "templates" / "case",  # git checkout: platform/idsp/ -> repo
    )
    for root in candidates:
        if (root / "versions").is_dir():
            return root
    raise UserError(
        "the case template is missing from this installation",
        where=" or ".join(str(c) for c in candidates),
        fix="Reinstall idsp, or set IDSP_CASE_TEMPLATE to a templates/case folder",
    )


def template_versions(root: Path | None = None) -> list[TemplateVersion]:
    """All release layers, oldest first (PEP 440 order)."""
    from packaging.version import InvalidVersion, Version

    root = root or template_root()
    found = []
    for path in (root / "versions").iterdir():
        if not path.is_dir():
            continue
        try:
            found.append((Version(path.name), TemplateVersion(path.name, path)))
        except InvalidVersion:
            raise UserError(
                f"template layer {path.name!r} is not a version number",
                where=str(path),
                fix="Name release layers by version, e.g. versions/1.1.0",
            ) from None
    if not found:
        raise UserError("the case template has no versions", where=str(root / "versions"))
    return [tv for _, tv in sorted(found, key=lambda pair: pair[0])]


def newest_version(root: Path | None = None) -> str:
    return template_versions(root)[-1].version


def _layer_files(layer: Path) -> Iterator[Path]:
    for path in sorted(layer.rglob("*")):
        if path.is_file() and path.relative_to(layer).as_posix() != REMOVED_FILE:
            yield path


def layer_digest(layer: Path) -> str:
    """sha256 over the paths and contents of every file in a release layer."""
    digest = hashlib.sha256()
    files = (p for p in layer.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    for path in sorted(files):
        rel = path.relative_to(layer).as_posix().encode()
        digest.update(b"%d:%s" % (len(rel), rel))
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def released_digests(root: Path | None = None) -> dict[str, str]:
    root = root or template_root()
    path = root / RELEASED_FILE
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise UserError("the release list must map versions to sha256 digests", where=str(path),
                        fix='e.g. "1.0.0": 3f2a...; write it with python -m idsp.case_template release 1.0.0')
    return {str(k): v for k, v in data.items()}


def check_released(root: Path | None = None) -> list[TemplateVersion]:
    """The layers, after checking that no released layer was edited and that only the
    newest may be unreleased. Cases made from a layer need it unchanged: copier's
    three-way update compares them against exactly what they were rendered from."""
    root = root or template_root()
    versions = template_versions(root)
    listed = root / RELEASED_FILE
    if not listed.is_file():
        return versions  # a template of one's own (IDSP_CASE_TEMPLATE) that keeps no release list
    released = released_digests(root)
    for tv in versions:
        want = released.get(tv.version)
        if want is None:
            if tv is not versions[-1]:
                raise UserError(
                    f"template layer {tv.version} is not released, but a newer layer follows it",
                    where=str(listed),
                    fix=f"Release it: python -m idsp.case_template release {tv.version}",
                )
            continue
        have = layer_digest(tv.path)
        if have != want:
            raise UserError(
                f"the released template layer {tv.version} was edited (sha256 {have[:12]}…, released as {want[:12]}…);"
                " cases made from it could no longer be updated safely",
                where=str(tv.path),
                fix="Restore the layer from git (git checkout -- <layer>) and put the change in a new layer",
            )
    unknown = sorted(set(released) - {tv.version for tv in versions})
    if unknown:
        raise UserError(f"released template layer(s) {', '.join(unknown)} are missing", where=str(listed),
                        fix="Restore them from git: cases made from them need them")
    return versions


def release(version: str, root: Path | None = None) -> str:
    """Record the digest of a layer as released (maintainers, when idsp ships it)."""
    from idsp.files import atomic_write

    root = root or template_root()
    layers = {tv.version: tv for tv in template_versions(root)}
    if version not in layers:
        raise UserError(f"no template layer {version}", where=str(root / "versions"),
                        fix=f"Choose one of: {', '.join(layers)}")
    released = released_digests(root)
    if version in released:
        raise UserError(f"template layer {version} is already released", where=str(root / RELEASED_FILE))
    released[version] = layer_digest(layers[version].path)
    header = "# Released case template layers: version -> sha256 (idsp.case_template.layer_digest).\n" \
             "# A released layer is never edited; tests and `idsp case new|update` check it.\n"
    atomic_write(root / RELEASED_FILE, header + yaml.safe_dump(released, sort_keys=True))
    return released[version]


def materialise(target: Path, root: Path | None = None) -> list[TemplateVersion]:
    """Build the template's git repository in ``target``: one commit and tag per layer."""
    versions = check_released(root)
    target.mkdir(parents=True, exist_ok=True)
    _git(target, "init", "-q", "-b", "main")
    for tv in versions:
        removed = tv.path / REMOVED_FILE
        if removed.is_file():
            for line in removed.read_text(encoding="utf-8").splitlines():
                rel = line.strip()
                if not rel or rel.startswith("#"):
                    continue
                victim = (target / rel).resolve()
                if not victim.is_relative_to(target.resolve()) or victim == target.resolve():
                    raise UserError(
                        f"REMOVED names a path outside the template: {rel!r}",
                        where=str(removed),
                        fix="List paths inside the template, e.g. project/old_file.md",
                    )
                if victim.is_dir():
                    shutil.rmtree(victim)
                else:
                    victim.unlink(missing_ok=True)
        for src in _layer_files(tv.path):
            dst = target / src.relative_to(tv.path)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        _git(target, "add", "-A")
        _git(
            target,
            *_TEMPLATE_AUTHOR,
            "commit",
            "-q",
            "--allow-empty",
            "--no-verify",
            "-m",
            f"IDSP case template {tv.version}",
        )
        _git(target, "tag", tv.tag)
    return versions


@contextlib.contextmanager
def template_source(root: Path | None = None) -> Iterator[str]:
    """Materialise the template in a temporary folder and work from there.

    Yields the source string to give copier. The working directory is changed for the
    duration, because copier resolves the recorded relative ``_src_path`` against it.
    """
    with tempfile.TemporaryDirectory(prefix="idsp-case-template-") as tmp:
        materialise(Path(tmp) / TEMPLATE_SOURCE, root)
        previous = os.getcwd()
        os.chdir(tmp)
        try:
            yield TEMPLATE_SOURCE
        finally:
            os.chdir(previous)


def questions(root: Path | None = None) -> list[Question]:
    """The questions of the newest template version, in the order of its copier.yml."""
    layer = _newest_with_copier_yml(root)
    raw = yaml.safe_load((layer / "copier.yml").read_text(encoding="utf-8")) or {}
    out = []
    for name, spec in raw.items():
        if name.startswith("_") or not isinstance(spec, dict) or spec.get("when") is False:
            continue
        choices = spec.get("choices") or {}
        values = tuple(str(v) for v in (choices.values() if isinstance(choices, dict) else choices))
        out.append(
            Question(
                name=name,
                help=str(spec.get("help", name)),
                type=str(spec.get("type", "str")),
                choices=values,
                default=spec.get("default"),
                multiselect=bool(spec.get("multiselect", False)),
            )
        )
    return out


def _newest_with_copier_yml(root: Path | None, upto: str | None = None) -> Path:
    """The layer whose copier.yml is in force at version ``upto`` (default: the newest)."""
    from packaging.version import Version

    for tv in reversed(template_versions(root)):
        if upto is not None and Version(tv.version) > Version(upto):
            continue
        if (tv.path / "copier.yml").is_file():
            return tv.path
    raise UserError("no copier.yml in any template version", where=str(root or template_root()))


def migrations_between(old: str, new: str, root: Path | None = None) -> list[str]:
    """Migrations copier will run going from ``old`` to ``new``: their version and command.

    copier reads them from the copier.yml of the version it goes to.
    """
    from packaging.version import Version

    layer = _newest_with_copier_yml(root, upto=new)
    raw = yaml.safe_load((layer / "copier.yml").read_text(encoding="utf-8")) or {}
    found = []
    for mig in raw.get("_migrations") or []:
        if isinstance(mig, dict) and "version" in mig:
            if Version(old) < Version(str(mig["version"])) <= Version(new):
                command = mig.get("command", "")
                if isinstance(command, list):
                    command = " ".join(str(c) for c in command)
                command = re.sub(r"\{\{\s*_copier_conf\.src_path\s*\}\}/?", "", command)
                command = re.sub(r"\{\{\s*_copier_python\s*\}\}", "python", command)
                found.append(f"{mig['version']}: {command}")
    return found


def _coerce(question: Question, value: Any) -> Any:
    if question.type == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"y", "yes", "ja", "j", "true", "1", "on"}:
            return True
        if text in {"n", "no", "nee", "false", "0", "off"}:
            return False
        raise UserError(
            f"`{question.name}` = {value!r} is not yes or no",
            fix=f"Use --data {question.name}=yes or --data {question.name}=no",
        )
    if question.multiselect:
        items = value if isinstance(value, list | tuple) else str(value).split(",")
        return [str(i).strip() for i in items if str(i).strip()]
    return str(value).strip()


def _render_default(default: Any, answers: dict[str, Any]) -> Any:
    if isinstance(default, str) and "{{" in default:
        from jinja2 import Environment

        return Environment().from_string(default).render(**answers)
    return default


def default_project_lead() -> str:
    try:
        name = subprocess.run(
            ["git", "config", "user.name"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        name = ""
    return name or getpass.getuser()


def resolve_answers(
    name: str,
    given: dict[str, Any],
    *,
    ask: Callable[[Question, Any, str | None], Any] | None = None,
    root: Path | None = None,
) -> dict[str, Any]:
    """Turn the answers given (and asked) into the full, validated set of template data.

    ``ask(question, default, problem)`` is called for every question not in ``given``
    when interactive (again, with ``problem`` set, after an invalid answer); otherwise the
    default is taken. Raises ``UserError`` naming the answer and how to give it.
    """
    qs = {q.name: q for q in questions(root)}
    unknown = sorted((set(given) - set(qs)) | (set(given) & _OWN_ANSWERS))
    if unknown:
        allowed = ", ".join(sorted(set(qs) - _OWN_ANSWERS))
        raise UserError(
            f"unknown or reserved answer {', '.join(unknown)}",
            where="--data",
            fix=f"Answers you can give: {allowed} (the case name is the argument NAME)",
        )
    answers: dict[str, Any] = {"slug": name, "created": date.today().isoformat()}
    _check_spec(answers | {"title": name}, fields={"id"})
    for q in qs.values():
        if q.name in _OWN_ANSWERS:
            continue
        if q.name in given:
            answers[q.name] = _check_one(q, given[q.name], answers)
            continue
        default = _default_for(q, answers)
        if ask is None:
            if default is None:
                raise UserError(
                    f"no answer for `{q.name}` ({q.help})",
                    where="--data",
                    fix=f"Give it with --data {q.name}=VALUE, or run interactively",
                )
            answers[q.name] = _check_one(q, default, answers)
            continue
        problem = None
        while True:
            try:
                answers[q.name] = _check_one(q, ask(q, default, problem), answers)
                break
            except UserError as exc:
                problem = exc.message
    _check_spec(answers, fields=None)
    return answers


def _default_for(q: Question, answers: dict[str, Any]) -> Any:
    if q.name == "project_lead":
        return default_project_lead()
    if q.name == "inspectorates":
        # The zaaknummer's prefix is usually the inspectorate that owns the case.
        prefix = str(answers.get("zaaknummer", "")).split("-")[0]
        if prefix in INSPECTORATES:
            return [prefix]
    return _render_default(q.default, answers)


def _check_one(q: Question, raw: Any, answers: dict[str, Any]) -> Any:
    """Coerce and validate one answer; raise ``UserError`` that says how to give it right."""
    value = _coerce(q, raw)
    where = "--type" if q.name == "case_type" else f"--data {q.name}"
    if q.choices and q.multiselect:
        bad = [v for v in value if v not in q.choices]
        if bad or not value:
            raise UserError(
                f"`{q.name}` = {','.join(value) or '(empty)'} is not allowed",
                where=where,
                fix=f"Choose one or more of {', '.join(q.choices)}, comma-separated",
            )
    elif q.choices and value not in q.choices:
        raise UserError(
            f"`{q.name}` = {value!r} is not allowed",
            where=where,
            fix=f"Choose one of {', '.join(q.choices)}",
        )
    if q.name in ("project_lead", "title", "zaaknummer") and not str(value).strip():
        raise UserError(f"`{q.name}` is empty", where=where, fix=f"Give {where}=VALUE")
    if q.name == "zaaknummer":
        _check_spec({"zaaknummer": value}, fields={"zaaknummer"})
    if q.name == "data_sources":
        for source in (s.strip() for s in str(value).split(",")):
            normal = source.lower().replace(" ", "_").replace("-", "_")
            if source and not SOURCE_NAME_RE.match(normal):
                raise UserError(
                    f"data source name {source!r} cannot be a dataset name",
                    where=where,
                    fix="Use short names of letters, digits, spaces or dashes, starting with a letter",
                )
    return value


def check_answers(answers: dict[str, Any]) -> None:
    """Validate a complete set of answers (as ``resolve_answers`` returns) again."""
    _check_spec(answers, fields=None)


def _check_spec(answers: dict[str, Any], fields: set[str] | None) -> None:
    """Validate answers with the case.yaml schema itself, so both agree on every rule."""
    from pydantic import ValidationError

    data = {
        "id": answers.get("slug", "placeholder-id"),
        "title": answers.get("title", "x"),
        "zaaknummer": answers.get("zaaknummer", "ILT-2000-000"),
        "inspectorates": tuple(answers.get("inspectorates", ("ILT",))),
        "case_type": answers.get("case_type", GENERIC_CASE_TYPE),
        "profile": {
            "personal_data": answers.get("personal_data", False),
            "risk_profiling": answers.get("risk_profiling", "none"),
        },
    }
    try:
        CaseSpec.model_validate(data)
    except ValidationError as exc:
        names = {"id": "NAME", "case_type": "--type"}
        for err in exc.errors():
            top = str(err["loc"][0])
            if fields is not None and top not in fields:
                continue
            answer = {"id": "slug"}.get(top, top)
            raise UserError(
                f"`{answer}` = {err.get('input')!r} is not valid: "
                + err["msg"].removeprefix("Value error, "),
                where=names.get(top, f"--data {answer}"),
                fix="Correct it and run the command again; nothing was written",
            ) from None


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", *args], cwd=repo, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise UserError(f"git {args[0]} failed: {proc.stderr.strip()}", where=str(repo))
    return proc.stdout


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "release":
        sys.exit("usage: python -m idsp.case_template release VERSION")
    try:
        print(f"released {sys.argv[2]}: {release(sys.argv[2])}")
    except UserError as exc:
        sys.exit(exc.message)
