"""The platform's runner: an official run of a case, from exactly one commit, as its own account.

Rule: the runner never looks at a case's working tree. The case agent (root) clones exactly
the commit the service approved (``git clone --no-local --no-hardlinks``, no hooks) into a
fresh folder, copies in the DVC-tracked data the commit's ``.dvc`` records name from the case's
DVC cache or remote, checking every file's md5 as it reads it (a folder dataset through its
``.dir`` manifest), hands the folder to the runner account (``<prefix>svc-runner``, a system
account in no group, which never gets access to any case folder) and runs ``dvc repro
--force`` there (every output made by the run itself) as that account with a cleared environment: a fixed list of variables, no user site,
``PYTHONSAFEPATH``, ``PYTHONPATH`` = the checkout's own ``src``. Paths from a commit are never
followed through links. What the run prints goes, line by line, to a log the service reads
(root's file, the service's group, 0640), and its end to ``status.json`` beside it. The
service decides whether the run may start; this module only carries it out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from idsp.errors import UserError
from idsp.files import atomic_write

log = logging.getLogger("idsp.hub.runner")
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
STAGE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}$")
RUN_ID_RE = re.compile(r"^[0-9a-f]{32}$")
PURPOSES = ("use", "development")
RUNNER = "svc-runner"
MAX_DVC_FILE = 256 * 1024
MAX_MANIFEST = 64 * 1024 * 1024
MAX_RUN_SECONDS = 6 * 3600
CHUNK = 1024 * 1024
# The only variables an official run sees besides the ones the runner sets itself.
KEPT_ENV = ("LANG", "LC_ALL", "TZ")


RUN_ENV = {  # what the service may hand an official run, and the form each value must have
    "IDSP_RUNNER_MLFLOW_RUN": re.compile(r"^[0-9a-f]{32}$"),
    "IDSP_RUNNER_RUN": RUN_ID_RE,
    "IDSP_RUNNER_PURPOSE": re.compile(r"^(use|development)$"),
    "IDSP_RUNNER_OFFICIAL": re.compile(r"^[01]$"),
    "IDSP_RUNNER_APPROVAL": re.compile(r"^[A-Za-z0-9_,.:-]{0,2000}$"),
    "IDSP_TRACKING__URI": re.compile(r"^https?://[A-Za-z0-9.:\[\]-]{1,200}(/[A-Za-z0-9._/-]*)?$"),
    "MLFLOW_TRACKING_USERNAME": re.compile(r"^idsp-runner-[a-z][a-z0-9-]{1,62}[a-z0-9]$"),
    "MLFLOW_TRACKING_PASSWORD": re.compile(r"^[A-Za-z0-9_=+/-]{8,200}$"),
}


def check_env(env: object) -> dict[str, str]:
    """The run's environment from the service: known names only, each in its form."""
    if not isinstance(env, dict):
        raise ValueError("`env` must be an object")
    for key, value in env.items():
        form = RUN_ENV.get(key)
        if form is None:
            raise ValueError(f"`env` may not set {key!r}; an official run takes {', '.join(sorted(RUN_ENV))}")
        if not isinstance(value, str) or not form.match(value):
            raise ValueError(f"`env` {key} is not in its form")
    return dict(env)


class CheckoutError(UserError):
    """The commit or its data cannot be brought into a clean checkout."""


def account_name(prefix: str) -> str:
    return f"{prefix}{RUNNER}"


def ensure_account(prefix: str) -> pwd.struct_passwd:
    """The runner's system account: no password, no login shell, its own group only."""
    from idsp.hub import accounts

    name = account_name(prefix)
    with accounts.OS_LOCK:
        if not accounts.account_exists(name):
            shell = "/usr/sbin/nologin" if Path("/usr/sbin/nologin").exists() else "/bin/false"
            done = subprocess.run(
                ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                 "--shell", shell, "--user-group", "--comment", "IDSP platform runner", name],
                capture_output=True, text=True,
            )  # fmt: skip
            if done.returncode != 0 and not accounts.account_exists(name):
                raise UserError(f"could not create the runner account {name}: {done.stderr.strip()}",
                                fix="Run `idsp hub up` as root on a system with useradd")  # fmt: skip
    return pwd.getpwnam(name)


# -- the checkout --------------------------------------------------------------------------


_GIT_CONFIG = "[safe]\n\tdirectory = *\n[core]\n\thooksPath = /dev/null\n\tfsmonitor = false\n"
_git_config: list[str] = []


def _global_config() -> str:
    """A private global git config: the case repositories belong to root (and their objects to
    the members) while the service or root reads them. Not ``git -c``: git drops command-line
    config for the ``upload-pack`` of a local clone, and it checks ownership there too."""
    if not _git_config or not os.path.isfile(_git_config[0]):
        import tempfile

        folder = tempfile.mkdtemp(prefix="idsp-git-")  # 0700, this account's
        path = os.path.join(folder, "config")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(_GIT_CONFIG)
        _git_config[:] = [path]
    return _git_config[0]


def _git(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent", "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": _global_config(), "GIT_TERMINAL_PROMPT": "0", "LANG": "C.UTF-8"}  # fmt: skip
    base = ["git", "-c", "safe.directory=*", "-c", "core.hooksPath=/dev/null",
            "-c", "protocol.file.allow=always", "-c", "advice.detachedHead=false"]  # fmt: skip
    done = subprocess.run([*base, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check and done.returncode != 0:
        raise CheckoutError(f"git {args[0]} failed: {done.stderr.strip()[-400:]}")
    return done


def clone(case_root: Path, commit: str, dest: Path) -> None:
    """A clean checkout of exactly ``commit`` of the case's repository in ``dest`` (new)."""
    if not COMMIT_RE.match(commit):
        raise CheckoutError(f"{commit!r} is not a full commit id (40 hex digits)")
    _git("clone", "--quiet", "--no-local", "--no-hardlinks", "--no-checkout", str(case_root), str(dest))
    if _git("cat-file", "-e", f"{commit}^{{commit}}", cwd=dest, check=False).returncode != 0:
        raise CheckoutError(
            f"commit {commit[:12]} is not in the case's repository",
            fix="Commit your work in the case (`git commit`) and run again; the platform runs committed code only",
        )
    _git("checkout", "--quiet", "--detach", commit, cwd=dest)
    head = _git("rev-parse", "HEAD", cwd=dest).stdout.strip()
    if head != commit:
        raise CheckoutError(f"the checkout is at {head[:12]}, not at {commit[:12]}")


def _inside(root: Path, rel: str) -> Path:
    """``root/rel`` with every folder on the way a real folder (made if missing): never a link."""
    parts = Path(rel).parts
    if not parts or Path(rel).is_absolute() or any(p in ("..", ".", "") for p in parts):
        raise CheckoutError(f"the data path {rel!r} leaves the case")
    here = root
    for part in parts[:-1]:
        here = here / part
        try:
            info = os.lstat(here)
        except FileNotFoundError:
            os.mkdir(here, 0o755)
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise CheckoutError(f"{here.relative_to(root)} in the commit is not a folder (a link?)",
                                fix="Data paths must be plain folders in the case")  # fmt: skip
    target = here / parts[-1]
    if os.path.lexists(target) and not (os.path.isdir(target) and not os.path.islink(target)):
        raise CheckoutError(f"{rel} is committed to git as well as tracked by DVC",
                            fix="Remove it from git (`git rm --cached`); DVC keeps the data")  # fmt: skip
    return target


def _blob(sources: list[Path], md5: str) -> Path:
    """The cached or pushed copy of the object ``md5`` (DVC 3 layout, or DVC 2's)."""
    if not re.fullmatch(r"[0-9a-f]{32}(\.dir)?", md5):
        raise CheckoutError(f"{md5!r} is not a DVC md5")
    for base in sources:
        for candidate in (base / "files" / "md5" / md5[:2] / md5[2:], base / md5[:2] / md5[2:]):
            try:
                if stat.S_ISREG(os.lstat(candidate).st_mode):
                    return candidate
            except FileNotFoundError:
                continue
    raise CheckoutError(
        f"the data object {md5} is in neither the case's DVC cache nor its remote",
        fix="Run `dvc push` (or `dvc add` and commit) in the case, then run again",
    )


def _copy_checked(src: Path, dst: Path, md5: str, what: str) -> int:
    """Copy ``src`` to the new file ``dst``, hashing what is read; refuse on another md5."""
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    fd_in = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        while chunk := os.read(fd_in, CHUNK):
            digest.update(chunk)
            os.write(fd_out, chunk)
            size += len(chunk)
    finally:
        os.close(fd_in)
        os.close(fd_out)
    if digest.hexdigest() != md5.removesuffix(".dir"):
        os.unlink(dst)
        raise CheckoutError(
            f"{what}: the stored data has md5 {digest.hexdigest()}, the commit records {md5}: "
            "the DVC cache or remote was changed",
            fix="The platform admin checks the case's DVC cache and remote; `dvc push` the right data again",
        )
    return size


def _outs(dvc_file: Path) -> list[tuple[str, str]]:
    info = os.lstat(dvc_file)
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_DVC_FILE:
        raise CheckoutError(f"{dvc_file.name} is not a plain file of at most {MAX_DVC_FILE // 1024} KiB")
    data = yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}
    outs = data.get("outs") if isinstance(data, dict) else None
    found = []
    for out in outs or []:
        if isinstance(out, dict) and isinstance(out.get("path"), str) and isinstance(out.get("md5"), str):
            found.append((out["path"], out["md5"]))
    return found


def _lock_outs(checkout: Path) -> list[tuple[str, str]]:
    """The outputs ``dvc.lock`` records for the pipeline's stages (path, md5)."""
    lock = checkout / "dvc.lock"
    if not os.path.lexists(lock):
        return []
    info = os.lstat(lock)
    if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_DVC_FILE:
        raise CheckoutError(f"dvc.lock is not a plain file of at most {MAX_DVC_FILE // 1024} KiB")
    data = yaml.safe_load(lock.read_text(encoding="utf-8")) or {}
    stages = data.get("stages") if isinstance(data, dict) else None
    found = []
    for stage in (stages or {}).values() if isinstance(stages, dict) else []:
        outs = stage.get("outs") if isinstance(stage, dict) else None
        for out in outs if isinstance(outs, list) else []:
            if isinstance(out, dict) and isinstance(out.get("path"), str) and isinstance(out.get("md5"), str):
                found.append((out["path"], out["md5"]))
    return found


def materialize(checkout: Path, sources: list[Path], *, stage_outputs: bool = False) -> dict[str, int]:
    """Copy in every output of the commit's ``.dvc`` files, md5-checked; ``{path: bytes}``.

    With ``stage_outputs`` also what ``dvc.lock`` records of the pipeline's stages and the
    cache holds (the versions an approval binds: the service's gate reads them); the runner
    leaves them out, so ``dvc repro`` makes them again."""
    listed = _git("ls-files", "-z", "--", "*.dvc", cwd=checkout).stdout.split("\0")
    wanted = [(str(Path(rel).parent / path), md5) for rel in sorted(r for r in listed if r and not r.startswith(".dvc/"))
              for path, md5 in _outs(checkout / rel)]  # fmt: skip
    optional = _lock_outs(checkout) if stage_outputs else []
    copied: dict[str, int] = {}
    for out_rel, md5 in [*wanted, *optional]:
        rel = os.path.normpath(out_rel)
        if (out_rel, md5) in optional and (os.path.lexists(checkout / rel) or not _has(sources, md5)):
            continue  # committed to git (cache: false), or never cached: nothing to bring
        target = _inside(checkout, rel)
        if md5.endswith(".dir"):
            copied[out_rel] = _copy_dir(sources, target, md5, out_rel)
        else:
            copied[out_rel] = _copy_checked(_blob(sources, md5), target, md5, out_rel)
    return copied


def _has(sources: list[Path], md5: str) -> bool:
    try:
        _blob(sources, md5)
    except CheckoutError:
        return False
    return True


def _copy_dir(sources: list[Path], target: Path, md5: str, what: str) -> int:
    manifest = _blob(sources, md5)
    if os.lstat(manifest).st_size > MAX_MANIFEST:
        raise CheckoutError(f"{what}: the folder's DVC manifest is over {MAX_MANIFEST // 2**20} MiB")
    raw = manifest.read_bytes()
    if hashlib.md5(raw, usedforsecurity=False).hexdigest() != md5.removesuffix(".dir"):
        # DVC hashes the manifest as its canonical JSON: compare on that form
        entries = json.loads(raw)
        canonical = json.dumps(sorted(entries, key=lambda e: e["relpath"]), sort_keys=True).encode()
        if hashlib.md5(canonical, usedforsecurity=False).hexdigest() != md5.removesuffix(".dir"):
            raise CheckoutError(f"{what}: the folder manifest does not match its md5 {md5}")
    entries = json.loads(raw)
    os.makedirs(target, 0o755, exist_ok=True)
    total = 0
    for entry in entries:
        rel, part = entry.get("relpath"), entry.get("md5")
        if not isinstance(rel, str) or not isinstance(part, str):
            raise CheckoutError(f"{what}: a malformed entry in its folder manifest")
        dst = _inside(target, os.path.normpath(rel))
        total += _copy_checked(_blob(sources, part), dst, part, f"{what}/{rel}")
    return total


# -- the run ---------------------------------------------------------------------------------


def run_env(checkout: Path, work: Path, extra: dict[str, str]) -> dict[str, str]:
    """The whole environment of an official run: nothing inherited but ``KEPT_ENV``."""
    bin_dir = str(Path(sys.executable).parent)
    env = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env.update({
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(work / "home"),
        "XDG_CONFIG_HOME": str(work / "home" / ".config"), "XDG_CACHE_HOME": str(work / "home" / ".cache"),
        "TMPDIR": str(work / "tmp"), "PYTHONNOUSERSITE": "1", "PYTHONSAFEPATH": "1",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(checkout / "src"), "PYTHONUNBUFFERED": "1",
        "IDSP_HOME": str(work / "idsp"), "DVC_NO_ANALYTICS": "1", "DVC_SITE_CACHE_DIR": str(work / "dvc-site"),
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", "MPLBACKEND": "Agg",
    })  # fmt: skip
    env.update(extra)
    return env


def _give(tree: Path, uid: int, gid: int) -> None:
    """Hand the checkout to the runner: every entry, links themselves, never what they name."""
    for here, dirs, files in os.walk(tree):
        for name in (*dirs, *files):
            os.lchown(os.path.join(here, name), uid, gid)
    os.lchown(tree, uid, gid)


def _drop(account: pwd.struct_passwd):
    def demote() -> None:
        os.setgroups([])
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)
        os.umask(0o077)

    return demote


class Runs:
    """Where runs live: ``<home>/runner/log/<run>/`` (root, the service's group, 0750) and
    ``<home>/runner/work/<run>/`` (the runner's, 0700, removed after the run)."""

    def __init__(self, root: Path, service_gid: int):
        self.root = root
        self.service_gid = service_gid

    def _folder(self, path: Path, mode: int, gid: int = 0) -> Path:
        path.mkdir(mode=mode, parents=True, exist_ok=True)
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
            raise UserError("a runner folder is not root's own folder", where=str(path))
        os.chown(path, 0, gid)
        os.chmod(path, mode)
        return path

    def prepare(self, run_id: str) -> tuple[Path, Path]:
        if not RUN_ID_RE.match(run_id):
            raise UserError(f"{run_id!r} is not a run id (32 hex digits)")
        self._folder(self.root, 0o711)
        logs = self._folder(self.root / "log", 0o750, self.service_gid)
        work_root = self._folder(self.root / "work", 0o711)
        folder = logs / run_id
        folder.mkdir(mode=0o750)  # a run id is used once
        os.chown(folder, 0, self.service_gid)
        os.chmod(folder, 0o750)  # the agent's umask (077) took the group's bits at mkdir
        work = work_root / run_id
        work.mkdir(mode=0o700)
        return folder, work


class RunLog:
    """The log the service reads: lines appended as they come, status at the end."""

    def __init__(self, folder: Path, gid: int):
        self.folder = folder
        self.path = folder / "log.txt"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o640)
        os.fchown(fd, 0, gid)
        os.fchmod(fd, 0o640)  # past the agent's umask: the service's group reads it
        self._fh = os.fdopen(fd, "w", encoding="utf-8", buffering=1)
        self.gid = gid

    def line(self, text: str) -> None:
        self._fh.write(text.rstrip("\n")[:4000] + "\n")

    def end(self, status: dict[str, Any]) -> None:
        self._fh.close()
        path = self.folder / "status.json"
        atomic_write(path, json.dumps(status), mode=0o640)
        os.chown(path, 0, self.gid)
        os.chmod(path, 0o640)


def execute(job: dict[str, Any], sources: list[Path], account: pwd.struct_passwd, runlog: RunLog,
            work: Path) -> dict[str, Any]:
    """Checkout, data, ``dvc repro`` as the runner; the end status (never raises)."""
    t0 = time.monotonic()
    checkout = work / "case"
    phase = "checkout"
    try:
        runlog.line(f"==> schone kopie van commit {job['commit'][:12]} (clean checkout)")
        clone(job["case_root"], job["commit"], checkout)
        phase = "data"
        copied = materialize(checkout, sources)
        runlog.line(f"==> data: {len(copied)} DVC-bestand(en), md5 gecontroleerd bij het lezen "
                    f"({sum(copied.values())} bytes)")  # fmt: skip
        for sub in ("home", "tmp", "idsp", "dvc-site"):
            (work / sub).mkdir(mode=0o700, exist_ok=True)
        _give(work, account.pw_uid, account.pw_gid)
        phase = "repro"
        # --force: an official run makes every output itself, also those committed to git
        cmd = [str(Path(sys.executable).parent / "dvc"), "repro", "--force", *([job["stage"]] if job["stage"] else [])]
        runlog.line(f"==> {' '.join(['dvc', *cmd[1:]])} als {account.pw_name}")
        env = run_env(checkout, work, job["env"])
        proc = subprocess.Popen(cmd, cwd=checkout, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, preexec_fn=_drop(account), text=True,
                                errors="replace", start_new_session=True)  # fmt: skip
        timer = threading.Timer(MAX_RUN_SECONDS, proc.kill)
        timer.start()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                runlog.line(line)
            code = proc.wait()
        finally:
            timer.cancel()
        return {"exit_code": code, "phase": phase, "seconds": round(time.monotonic() - t0, 3)}
    except Exception as exc:  # noqa: BLE001 - the service reads the reason from the status
        message = exc.message if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        runlog.line(f"==> afgebroken in fase {phase}: {message}")
        if not isinstance(exc, UserError):
            log.exception("run %s", job.get("run_id"))
        return {"exit_code": -1, "phase": phase, "error": message, "seconds": round(time.monotonic() - t0, 3)}


def start(job: dict[str, Any], sources: list[Path], runs: Runs, prefix: str) -> dict[str, Any]:
    """Prepare the run's folders and start it on a thread; returns where its log is."""
    account = ensure_account(prefix)
    folder, work = runs.prepare(job["run_id"])
    runlog = RunLog(folder, runs.service_gid)

    def go() -> None:
        status = execute(job, sources, account, runlog, work)
        try:
            shutil.rmtree(work)
        except OSError:
            log.exception("could not remove %s", work)
        runlog.end({**status, "ended": time.time()})

    threading.Thread(target=go, daemon=True, name=f"idsp-run-{job['run_id'][:8]}").start()
    return {"log": str(runlog.path), "status": str(folder / "status.json"), "runner": account.pw_name}
