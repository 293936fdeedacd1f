"""`idsp doctor`: the platform requirements of the inspectorates, checked here and now.

Rule: the requirements are data (``requirements.yaml``); this module holds one small check
function per requirement and never changes anything on the machine. A check returns
(status, detail) with status pass, fail, n/a (does not apply here) or later: something
``idsp hub up`` makes (a folder, the MLflow service) is missing on a machine where the hub
has never run; once it has run, the same thing missing or wrong is a failure again.
"""

from __future__ import annotations

import configparser
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import yaml

from idsp.config import PlatformConfig

REQUIREMENTS_FILE = Path(__file__).with_name("requirements.yaml")
CORE_PACKAGES = (
    "pandas", "great-expectations", "mlflow", "dvc", "fairlearn", "scikit-learn", "copier",
    "cryptography", "pydantic",
)
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|PRIVATE_KEY|ACCESS_KEY|API_KEY", re.I)
HUB_INJECTED = {"JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "MLFLOW_TRACKING_PASSWORD"}


@dataclass(frozen=True)
class Requirement:
    id: str
    title: str
    level: str
    check: str
    why: str
    how: str


@dataclass(frozen=True)
class Result:
    id: str
    title: str
    level: str
    status: str  # pass | fail | n/a
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


def load_requirements(path: Path = REQUIREMENTS_FILE) -> list[Requirement]:
    return [Requirement(**item) for item in yaml.safe_load(path.read_text(encoding="utf-8"))]


HUB_MAKES = "will be made by `idsp hub up` (the hub has not run here yet)"


def hub_has_run(cfg: PlatformConfig) -> bool:
    """True inside a hub user server, or where ``idsp hub up`` has prepared its state
    (it writes the hub's config file on every start)."""
    from idsp.hub.state import HubPaths

    if os.environ.get("JUPYTERHUB_API_URL"):
        return True
    paths = HubPaths.of(cfg)
    return paths.config_file.exists() or paths.db_file.exists()


def _python_version(cfg: PlatformConfig, case_root: Path | None):
    v = sys.version_info
    ok = (3, 11) <= (v.major, v.minor) <= (3, 12)
    return ("pass" if ok else "fail"), f"Python {v.major}.{v.minor}.{v.micro}"


def _locked_versions() -> dict[str, str]:
    lock = Path(__file__).resolve().parents[2] / "requirements.lock"
    if not lock.is_file():
        return {}
    pins = {}
    for line in lock.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def _packages(cfg: PlatformConfig, case_root: Path | None):
    pins = _locked_versions()
    missing, differ, found = [], [], []
    for name in CORE_PACKAGES:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        found.append(f"{name} {version}")
        if pins.get(name) and pins[name] != version:
            differ.append(f"{name} {version} (lock: {pins[name]})")
    if missing:
        return "fail", "missing: " + ", ".join(missing)
    if differ:
        return "fail", "not the locked version: " + ", ".join(differ)
    return "pass", f"{len(found)} core packages" + (" at their locked versions" if pins else "")


def _tracking_server(cfg: PlatformConfig, case_root: Path | None):
    import urllib.error
    import urllib.request

    uri = cfg.tracking.client_uri().rstrip("/")
    if not uri.startswith("http"):
        return "n/a", f"tracking URI {uri} is not a server"
    try:
        with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
            body = response.read(100).decode(errors="replace").strip()
        return ("pass" if response.status == 200 else "fail"), f"{uri} answers {body!r}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if not cfg.tracking.uri and not hub_has_run(cfg):  # the platform's own server: the hub's
            return "later", f"{uri} does not answer yet; it {HUB_MAKES.replace('made', 'started')}"
        start = "the hub starts it (`idsp hub up`)" if hub_has_run(cfg) else "start it with `idsp tracking serve`"
        return "fail", f"{uri} does not answer ({reason}); {start}"


def _dvc_remote(cfg: PlatformConfig, case_root: Path | None):
    if case_root is not None:
        config_file = case_root / ".dvc" / "config"
        if not config_file.is_file():
            return "fail", f"{case_root} has no .dvc/config; run `dvc init` there"
        parser = configparser.ConfigParser()
        parser.read(config_file)
        remote = parser.get("core", "remote", fallback=None)
        if not remote:
            return "fail", f"no default remote in {config_file}; `dvc remote add -d shared {cfg.dvc_remote_url()}`"
        return "pass", f"default remote {remote!r}"
    folder = cfg.dvc_remote_folder()
    if folder is None:
        return "pass", f"platform remote {cfg.dvc_remote_url()}"
    ran = hub_has_run(cfg)
    if folder.is_dir():
        mode = stat.S_IMODE(folder.stat().st_mode)
        if ran and mode & 0o004:
            return "fail", (f"remote folder {folder} has mode {mode:04o}: every account can list the "
                            "cases' remotes; `chmod 0711` it (as `idsp hub up` makes it)")
        return "pass", f"remote folder {folder} (each case pushes to its own folder below it)"
    if not ran:
        return "later", f"remote folder {folder} {HUB_MAKES} (or by `idsp case new` without a hub)"
    return "fail", f"remote folder {folder} does not exist; `idsp hub up` makes it again (restart the hub)"


def _git_identity(cfg: PlatformConfig, case_root: Path | None):
    values = {}
    for key in ("user.name", "user.email"):
        proc = subprocess.run(["git", "config", "--get", key], capture_output=True, text=True,
                              cwd=case_root or None)
        values[key] = proc.stdout.strip()
    missing = [k for k, v in values.items() if not v]
    if missing:
        return "fail", "not set: " + ", ".join(missing) + " (`git config --global user.name ...`)"
    return "pass", f"{values['user.name']} <{values['user.email']}>"


def _keys(cfg: PlatformConfig, case_root: Path | None):
    folder = cfg.path("keys_dir")
    files = sorted(folder.glob("*.key")) if folder.is_dir() else []
    if not files:
        # a key is made per pseudonymisation domain when one is needed; none yet is no fault
        # (and `idsp data pseudonymise` without one stops naming the command)
        return "later", (f"no pseudonymisation key yet in {folder}: make one per domain with "
                         "`idsp data keygen DOMAIN` before the first `idsp data pseudonymise`")
    problems = []
    dir_mode = stat.S_IMODE(folder.stat().st_mode)
    if dir_mode & 0o077:
        problems.append(f"{folder} has mode {dir_mode:04o} (want 0700)")
    for f in files:
        mode = stat.S_IMODE(f.stat().st_mode)
        if mode & 0o077:
            problems.append(f"{f.name} has mode {mode:04o} (want 0600)")
    if problems:
        return "fail", "; ".join(problems)
    return "pass", f"{len(files)} key(s) in {folder}, all private"


def _env_secrets(cfg: PlatformConfig, case_root: Path | None):
    names = sorted(n for n in os.environ if SECRET_NAME.search(n) and n not in HUB_INJECTED)
    if names:
        return "fail", "secret-like variables set: " + ", ".join(names) + " (values not shown)"
    return "pass", "none found"


def _precommit(cfg: PlatformConfig, case_root: Path | None):
    if case_root is None:
        return "n/a", "not inside a case project"
    hook = case_root / ".git" / "hooks" / "pre-commit"
    if hook.is_file() and "pre-commit" in hook.read_text(errors="replace"):
        return "pass", f"{hook}"
    return "fail", f"no pre-commit hook in {case_root}; run `pre-commit install` there"


CHECKS: dict[str, Callable[[PlatformConfig, Path | None], tuple[str, str]]] = {
    "python_version": _python_version,
    "packages": _packages,
    "tracking_server": _tracking_server,
    "dvc_remote": _dvc_remote,
    "git_identity": _git_identity,
    "keys": _keys,
    "env_secrets": _env_secrets,
    "precommit": _precommit,
}


def run_checks(cfg: PlatformConfig, case_root: Path | None = None) -> list[Result]:
    results = []
    for req in load_requirements():
        status, detail = CHECKS[req.check](cfg, case_root)
        results.append(Result(req.id, req.title, req.level, status, detail))
    return results


def must_failures(results: list[Result]) -> list[Result]:
    return [r for r in results if r.level == "must" and r.status == "fail"]
