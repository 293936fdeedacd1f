"""What an approval binds: the case file, checklist content, code, environment, data and parameters.

Rule: ``compute`` only reads files and asks git about the repository; it never runs DVC
(DVC's own records, ``<dataset>.dvc`` and ``dvc.lock``, are read as bounded YAML). The keys:

* ``case`` — always: what in ``case.yaml`` decides (the dataset declarations, the policy with
  ``approval_binds``, the profile, the case type), kept readable so the gate can say what
  changed; ``approval_binds`` itself is bound, so it cannot switch the other keys off;
* ``checklist`` — content sha256 of definition + answers + evidence hashes;
* ``code`` — the committed git tree of HEAD: sha256 over (path, mode, blob) of every tracked
  file, except what other keys bind (``ethics/``, case.yaml, DVC records, the datasets, the
  pipeline's declared outputs, the answers' evidence) and the stored quality results (the
  gate checks those itself). Uncommitted changes, and untracked or ignored Python that could be
  imported, do not change it: ``code_problems`` names them and the gate refuses official
  runs while they exist. Outside git, every file of the case folder counts (minus the same);
* ``environment`` — with ``code``: sha256 of the distributions installed in the platform's
  environment (its site-packages, name==version); distributions importable from elsewhere
  (PYTHONPATH, a folder put on sys.path) are named by ``code_problems``;
* ``data`` — the DVC md5 of each dataset named, from its ``.dvc`` file or ``dvc.lock``;
* ``params`` — sha256 of ``params.yaml``.
"""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idsp.errors import UserError
from idsp.files import inside, load_yaml

from legal_ethics.canonical import md5_file, sha256_file, sha256_of

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case_file import CaseFile

_SKIP_PARTS = {"__pycache__", ".ipynb_checkpoints", ".git", ".dvc", ".venv"}
_BOUND_ELSEWHERE = ("ethics/", "dvc.lock")  # the checklist and data keys bind these
_IMPORTABLE = (".py", ".pth", ".so", ".pyc", ".ipynb")
_HARMLESS = ("__pycache__", ".ipynb_checkpoints", ".egg-info", ".dist-info")
# Set by the platform service for its own process: it reads repositories its users write,
# so it runs only git commands that read objects (ls-tree, rev-parse). `git status` may run
# a clean filter that the repository's own config names, i.e. a member's program.
COMMITTED_ONLY_ENV = "IDSP_GIT_COMMITTED_ONLY"


def compute(case: CaseFile, datasets: list[str] | tuple[str, ...]) -> dict[str, Any]:
    binds = set(case.spec.policy.approval_binds)
    out: dict[str, Any] = {"case": case_binding(case)}
    if "checklist" in binds:
        out["checklist"] = checklist_hash(case)
    if "code" in binds:
        out["code"] = code_hash(Path(case.root), case)
        out["environment"] = environment_hash()
    if "data" in binds:
        out["data"] = {name: dvc_md5(case, name) for name in sorted(set(datasets))}
    if "params" in binds:
        params = Path(case.root) / "params.yaml"
        out["params"] = sha256_file(params) if params.is_file() else None
    return out


# --- case.yaml --------------------------------------------------------------------------


def case_binding(case: CaseFile) -> dict[str, Any]:
    """The parts of case.yaml that decide what a run may do, and their sha256."""
    spec = case.spec
    parts = {
        "case_type": spec.case_type,
        "profile": spec.profile.model_dump(mode="json"),
        "policy": spec.policy.model_dump(mode="json"),
        "datasets": {
            d.name: {"path": d.path, "personal_data": d.personal_data, "synthetic": d.synthetic,
                     "suite": d.suite, "dvc": d.dvc}
            for d in spec.datasets
        },
    }
    return {**parts, "sha256": sha256_of(parts)}


def case_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What changed between two ``case_binding`` values, in words (``field: old -> new``)."""
    out: list[str] = []
    for key in ("case_type", "profile", "policy"):
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            out.extend(f"{key}.{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new))
                       if old.get(k) != new.get(k))
        elif old != new:
            out.append(f"{key}: {old!r} -> {new!r}")
    old_ds, new_ds = before.get("datasets") or {}, after.get("datasets") or {}
    for name in sorted(set(old_ds) | set(new_ds)):
        if name not in new_ds:
            out.append(f"dataset {name} was removed")
        elif name not in old_ds:
            out.append(f"dataset {name} was added")
        else:
            out.extend(f"dataset {name}: {k} {old_ds[name].get(k)!r} -> {new_ds[name].get(k)!r}"
                       for k in sorted(set(old_ds[name]) | set(new_ds[name]))
                       if old_ds[name].get(k) != new_ds[name].get(k))
    return out or ["case.yaml changed"]


# --- checklist --------------------------------------------------------------------------


def checklist_hash(case: CaseFile) -> str | None:
    from idsp.errors import IdspError

    from legal_ethics import checklist

    if not checklist.has_checklist(case):
        return None
    try:
        return checklist.content_sha256(checklist.load_definition(case), checklist.load_answers(case))
    except IdspError:
        # Unreadable checklist: no hash to tag. The gate reads it again for official runs
        # and then reports the error itself.
        return None


# --- code: the committed git tree -------------------------------------------------------


def _git(root: Path, *args: str) -> bytes | None:
    try:
        proc = subprocess.run(["git", "-c", "core.quotepath=off", *args], cwd=root, capture_output=True,
                              timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _excluded(case: CaseFile | None) -> tuple[set[str], tuple[str, ...]]:
    """Paths bound by another key: the datasets and the pipeline's declared outputs (exact
    paths), and folders/prefixes (``ethics/``)."""
    exact: set[str] = {"dvc.lock", "case.yaml"}  # case.yaml: what decides in it is the ``case`` key
    if case is not None:
        exact.update(os.path.normpath(d.path) for d in case.spec.datasets)
        exact.update(_pipeline_outputs(Path(case.root)))
        exact.update(_evidence(case))
    return exact, ("ethics/", "quality/")  # quality results: the gate checks them on their own


def _evidence(case: CaseFile) -> set[str]:
    """The answers' evidence files: the checklist key binds their sha256."""
    from legal_ethics import checklist

    try:
        answers = checklist.load_answers(case)
    except UserError:
        return set()
    return {os.path.normpath(e.path) for a in answers.answers.values() for e in a.evidence}


def _pipeline_outputs(root: Path) -> set[str]:
    path = root / "dvc.yaml"
    if not path.is_file():
        return set()
    try:
        data = load_yaml(path, what="pipeline file dvc.yaml", kind="dvc")
    except UserError:
        return set()
    found: set[str] = set()
    stages = data.get("stages") if isinstance(data, dict) else None
    for stage in (stages or {}).values():
        wdir = str(stage.get("wdir") or ".") if isinstance(stage, dict) else "."
        for key in ("outs", "metrics", "plots"):
            for out in (stage.get(key) or []) if isinstance(stage, dict) else []:
                name = next(iter(out)) if isinstance(out, dict) and out else out
                if isinstance(name, str):
                    found.add(os.path.normpath(os.path.join(wdir, name)))
    return found


def _is_excluded(rel: str, exact: set[str], prefixes: tuple[str, ...]) -> bool:
    norm = os.path.normpath(rel)
    if norm.endswith(".dvc") or rel.startswith(prefixes):
        return True
    return any(norm == e or norm.startswith(e + os.sep) for e in exact)


def _prefix(root: Path) -> str | None:
    out = _git(root, "rev-parse", "--show-prefix")
    return None if out is None else out.decode("utf-8").strip()


def tree_listing(root: Path, case: CaseFile | None = None) -> list[list[str]] | None:
    """(path, mode, blob) of every file HEAD tracks below ``root``, minus what other keys
    bind; None outside git or before the first commit."""
    prefix = _prefix(root)
    if prefix is None:
        return None
    raw = _git(root, "ls-tree", "-r", "-z", "--full-tree", "HEAD")
    if raw is None:
        return [] if _git(root, "rev-parse", "--git-dir") is not None else None
    exact, prefixes = _excluded(case)
    listing = []
    for record in raw.decode("utf-8").split("\0"):
        if not record:
            continue
        meta, _, path = record.partition("\t")
        mode, _kind, blob = meta.split(" ")
        if prefix and not path.startswith(prefix):
            continue
        rel = path[len(prefix):]
        if not _is_excluded(rel, exact, prefixes):
            listing.append([rel, mode, blob])
    return sorted(listing)


def _walk(root: Path, case: CaseFile | None) -> list[list[str]]:
    exact, prefixes = _excluded(case)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_PARTS)
        for name in filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if name.endswith(".pyc") or _is_excluded(rel, exact, prefixes):
                continue
            kind = "link" if path.is_symlink() else "file"
            digest = os.readlink(path) if kind == "link" else sha256_file(path) if path.is_file() else "<special>"
            found.append([rel, kind, digest])
    return sorted(found)


def code_files(root: Path, case: CaseFile | None = None) -> list[str]:
    """The files the code binding covers (committed in HEAD; outside git every file)."""
    listing = tree_listing(root, case)
    return [row[0] for row in (listing if listing is not None else _walk(root, case))]


def code_hash(root: Path, case: CaseFile | None = None) -> str:
    listing = tree_listing(Path(root), case)
    return sha256_of({"git": listing} if listing is not None else {"files": _walk(Path(root), case)})


def code_problems(case: CaseFile) -> list[str]:
    """Why the code that would run is not the committed tree: uncommitted changes to tracked
    files, untracked or ignored Python that could be imported, links leaving the case, and
    packages importable from outside the platform's environment."""
    root = Path(case.root)
    foreign = foreign_packages()
    outside = [f"packages from outside the platform's environment could be imported: {_few(foreign)}; take their "
               "folders off PYTHONPATH / sys.path for an official run"] if foreign else []
    elsewhere = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and inside(root, p) is None]
    if elsewhere:  # plain modules there would shadow the committed code and the environment alike
        outside.append(f"PYTHONPATH names folders outside the case: {_few(elsewhere)}; an official run imports "
                       "only the committed code and the platform's environment: unset it")
    listing = tree_listing(root, case)
    if listing is None:
        return outside  # outside git every file is bound as it is
    exact, prefixes = _excluded(case)
    problems = [f"the tracked link {rel} points outside the case folder ({os.readlink(root / rel)}); "
                "commit the file itself" for rel, mode, _ in listing
                if mode == "120000" and (root / rel).is_symlink() and inside(root, rel) is None]
    if not listing:
        problems.append("nothing is committed yet: the code of an official run is the committed git tree; "
                        "commit it (`git add` and `git commit`)")
    dirty, loose = [], []
    for code, rel in _status(root):
        if _is_excluded(rel, exact, prefixes) or any(part in rel for part in _HARMLESS):
            continue
        if code in ("??", "!!"):
            top = "/" not in rel.rstrip("/")
            if rel.startswith("src/") or rel.endswith(_IMPORTABLE) or (top and _is_package(root / rel)):
                if code == "??" or not rel.endswith(".pyc"):
                    loose.append(rel)
        else:
            dirty.append(rel)
    if dirty:
        problems.append(f"uncommitted changes to {_few(dirty)}: an official run runs the committed code; "
                        "commit them (`git commit`) or undo them")
    if loose:
        problems.append(f"untracked or ignored code that Python could import instead of the committed code: "
                        f"{_few(loose)}; commit it or remove it")
    return problems + outside


def _status(root: Path) -> list[tuple[str, str]]:
    if os.environ.get(COMMITTED_ONLY_ENV) == "1":
        return []  # the service binds and runs the committed tree; the work tree is not its to run
    out = []
    for args in (("--untracked-files=all",), ("--ignored=matching", "--untracked-files=normal")):
        raw = _git(root, "status", "--porcelain=v1", "-z", *args, "--", ".")
        for record in (raw or b"").decode("utf-8").split("\0"):
            if len(record) > 3 and (args[0].startswith("--untracked") or record.startswith("!!")):
                out.append((record[:2], record[3:]))
    prefix = _prefix(root) or ""
    return sorted({(code, rel[len(prefix):] if rel.startswith(prefix) else rel) for code, rel in out})


def _is_package(path: Path) -> bool:
    return path.is_dir() and any(p.suffix in (".py", ".so") for p in path.iterdir())


def _few(paths: list[str]) -> str:
    return ", ".join(paths[:8]) + (f" and {len(paths) - 8} more" if len(paths) > 8 else "")


def _distributions() -> tuple[list[str], list[str]]:
    """(name==version of each distribution installed in the platform's environment, the
    distributions found elsewhere on sys.path as 'name version (folder)')."""
    import sysconfig
    from importlib import metadata

    roots = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    platform_env, foreign = set(), set()
    for dist in metadata.distributions():
        name, where = (dist.metadata["Name"] or "?").lower(), Path(str(dist.locate_file(""))).resolve()
        if where in roots:
            platform_env.add(f"{name}=={dist.version}")
        else:
            foreign.add(f"{name} {dist.version} ({where})")
    return sorted(platform_env), sorted(foreign)


@functools.cache
def environment_hash() -> str:
    """sha256 of every distribution installed in the platform's environment (its
    site-packages) as name==version: the same for every user of that environment."""
    return sha256_of(_distributions()[0])


def foreign_packages() -> list[str]:
    """Distributions importable from outside the platform's environment (PYTHONPATH, a folder
    put on sys.path): they could shadow what the approval bound."""
    return _distributions()[1]


# --- data -------------------------------------------------------------------------------


def _read(path: Path) -> Any:
    try:
        return load_yaml(path, what="DVC record", kind="dvc") if path.exists() else None
    except UserError:
        return None


def dvc_md5(case: CaseFile, name: str) -> str | None:
    """The md5 DVC recorded for a dataset, or None when DVC has no record of it."""
    ds = case.dataset(name)
    root = Path(case.root)
    record = _read(root / f"{ds.path}.dvc")
    if isinstance(record, dict):
        for out in record.get("outs") or []:
            if isinstance(out, dict) and out.get("md5"):
                return str(out["md5"])
    lock = _read(root / "dvc.lock")
    if isinstance(lock, dict):
        for stage in (lock.get("stages") or {}).values():
            for out in (stage or {}).get("outs") or []:
                if isinstance(out, dict) and os.path.normpath(str(out.get("path"))) == os.path.normpath(ds.path):
                    return str(out.get("md5")) if out.get("md5") else None
    return None


def expected_md5(case: CaseFile, name: str, run_bound: dict[str, str | None] | None = None) -> str | None:
    """The md5 a read of ``name`` must find: the one the open run was gated with, else DVC's record."""
    if run_bound and run_bound.get(name):
        return run_bound[name]
    return dvc_md5(case, name)


def workspace_mismatch(case: CaseFile, name: str, recorded: str | None) -> str | None:
    """The dataset's own md5 when it differs from DVC's record (edited without ``dvc add``):
    a file's md5, or a folder's ``.dir`` md5 recomputed as DVC does (``data_read``)."""
    from legal_ethics import data_read

    if recorded is None:
        return None
    path = Path(case.root) / case.dataset(name).path
    if recorded.endswith(".dir"):
        actual = data_read.dir_md5(path) if path.is_dir() else None
    else:
        actual = md5_file(path) if path.is_file() else None
    return actual if actual is not None and actual != recorded else None
