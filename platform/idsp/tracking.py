"""Gated, fully tagged MLflow runs of a case: ``with case.run("train", datasets=[...]) as run:``.

Rule: the gate is asked before anything reaches MLflow — a refused run creates no MLflow
run at all; every run that is created carries its provenance (case, zaaknummer, commit,
DVC hashes, checklist hash, approval ids, quality results, versions, key ids) as tags set
atomically at creation; nothing that contains a raw identifier (BSN, IBAN, e-mail, phone,
KvK) is logged; a run is always ended — FINISHED, or FAILED with the reason — and a run
whose end could not be written is remembered and marked FAILED by the next run. Only an
official, approved run can register a model. MLflow is imported when a run starts.
"""

from __future__ import annotations

import atexit
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import weakref
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idsp.errors import GateRefused, PIIFound, UserError
from legal_ethics.audit import AUDIT_TAG  # "<seq>:<hash>" of a run's run.started entry

if TYPE_CHECKING:  # pragma: no cover
    from idsp.case import Case
    from idsp.config import PlatformConfig

TAG = "idsp."
APPROVAL_NONE = "none"
BATCH_LIMIT = 1000  # MLflow's LogBatch limit for metrics
FLUSH_SECONDS = 5.0
TEXT_SUFFIXES = {
    ".txt", ".csv", ".tsv", ".json", ".jsonl", ".md", ".html", ".htm", ".yaml", ".yml",
    ".log", ".py", ".sql", ".xml", ".ini", ".cfg", ".toml", ".ipynb", ".r",
}  # fmt: skip
MAX_SCAN_BYTES = 200 * 1024 * 1024
VERSION_PACKAGES = (
    "idsp", "mlflow", "pandas", "numpy", "scikit-learn", "great-expectations", "fairlearn",
    "pyarrow", "dvc",
)  # fmt: skip
UNFINISHED_FILE = "unfinished-runs.jsonl"


class TrackingServerUnavailable(UserError):
    """The tracking server did not answer after the configured retries."""


# -- identifiers -----------------------------------------------------------------------------

_SPLIT = re.compile(r"[^A-Za-z0-9@.+_%'-]+")


def find_identifiers(text: str, *, kvk_context: bool = False) -> list[tuple[str, str]]:
    """Raw identifiers in a piece of text: [(kind, masked value)]; empty when clean.

    Looks for identifiers embedded in free text and for whole tokens (split on spaces,
    ``=``, ``/``, ``:`` and the like; ``_`` and ``-`` joined tokens are also split) that
    are a BSN (elfproef), IBAN (mod 97), e-mail address or Dutch phone number. KvK
    numbers (any 8 digits) are only looked for when ``kvk_context`` says the name is
    about KvK numbers, because dates and counts have the same shape.
    """
    from idsp import privacy

    text = str(text)
    found = list(privacy.find_in_text(text))
    seen = {m for _, m in found}
    kinds = ["bsn", "iban", "email", "phone"] + (["kvk"] if kvk_context else [])
    tokens = set(_SPLIT.split(text))
    tokens |= {p for t in list(tokens) if "@" not in t and not _is_decimal(t) for p in re.split(r"[_\-.]", t)}
    for token in tokens:
        if len(token) < 8 or _is_decimal(token):
            continue
        for kind in kinds:
            if kind == "iban" and not token[:2].isupper():
                continue  # lower-case hex (run ids, hashes) passes mod 97 one time in 97
            if privacy.KINDS[kind].check(token):
                masked = privacy.mask(token, kind)
                if masked not in seen:
                    seen.add(masked)
                    found.append((kind, masked))
                break
    return found


def _is_decimal(token: str) -> bool:
    """0.123456789 is a number: without its dot it would look like a phone number."""
    if "." not in token and "e" not in token.lower():
        return False
    try:
        float(token)
    except ValueError:
        return False
    return True


def _refuse(found: list[tuple[str, str]], what: str) -> None:
    if found:
        kinds = sorted({k for k, _ in found})
        raise PIIFound(
            f"refused to log {what}: it contains {', '.join(kinds)} ({', '.join(m for _, m in found[:3])})",
            fix="Raw identifiers never go to MLflow. Pseudonymise them (`idsp data pseudonymise`) "
            "or leave them out of names, values and files",
        )


def check_text(text: str, what: str, *, kvk_context: bool = False) -> None:
    _refuse(find_identifiers(text, kvk_context=kvk_context), what)


def _kvk_named(name: str) -> bool:
    return any(h in name.lower() for h in ("kvk", "handelsregister", "coc"))


def check_file(path: Path, what: str | None = None) -> None:
    """Refuse a file (or every file below a folder) that holds raw identifiers."""
    path = Path(path)
    files = [p for p in sorted(path.rglob("*")) if p.is_file()] if path.is_dir() else [path]
    for file in files:
        label = what or f"artefact {file.name}"
        if path.is_dir():
            label = f"artefact {file.relative_to(path.parent)}"
        check_text(file.name, f"{label} (its file name)")
        suffix = file.suffix.lower()
        if suffix == ".parquet":
            _check_table(file, label)
        elif suffix in TEXT_SUFFIXES or _looks_like_text(file):
            if file.stat().st_size > MAX_SCAN_BYTES:
                raise PIIFound(
                    f"refused to log {label}: {file.stat().st_size} bytes of text is too large to check "
                    "for identifiers",
                    fix="Log a summary, or a pseudonymised extract",
                )
            check_text(file.read_text(encoding="utf-8", errors="replace"), label)


def _looks_like_text(file: Path) -> bool:
    with open(file, "rb") as fh:
        head = fh.read(4096)
    if not head or b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _check_table(file: Path, label: str) -> None:
    import pandas as pd

    from idsp import privacy

    findings = [f for f in privacy.scan(pd.read_parquet(file)) if privacy.KINDS[f.kind].specific]
    if findings:
        what = ", ".join(f"{f.kind} in column {f.column!r}" for f in findings[:5])
        raise PIIFound(
            f"refused to log {label}: it holds raw identifiers ({what})",
            fix="Pseudonymise those columns first (`idsp data pseudonymise`)",
        )


def _scrub(text: str) -> str:
    """A failure message safe to store: identifiers replaced by their masked form."""
    from idsp import privacy

    out = str(text)
    for token in set(_SPLIT.split(out)):
        for kind in ("bsn", "iban", "email", "phone"):
            if len(token) >= 8 and privacy.KINDS[kind].check(token):
                out = out.replace(token, privacy.mask(token, kind))
    return out[:4000]


# -- provenance ------------------------------------------------------------------------------


def git_state(root: Path) -> tuple[str, bool | None]:
    """(commit, dirty) of the case repository; ("none", None) outside git."""

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return "none", None
        status = git("status", "--porcelain", "--untracked-files=no")
        return head.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return "none", None


def package_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for name in VERSION_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _tag_key(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-/ ]", "_", name)


def _key_ids(case: Case, datasets: list[str], config) -> dict[str, str]:
    from idsp.errors import IdspError

    domains = sorted({case.dataset(n).pseudonymisation_domain for n in datasets} - {None})
    if not domains:
        return {}
    from idsp.keys import KeyStore

    store = KeyStore.from_config(config)
    out = {}
    for domain in domains:
        try:
            out[domain] = store.load(domain).key_id
        except IdspError:
            out[domain] = "missing"
    return out


def _quality(case: Case, datasets: list[str]) -> tuple[dict[str, str], list[tuple[str, Path]], list[str]]:
    """Tags, artefacts to log and problems (for official runs) from the latest quality results."""
    from idsp import quality

    tags: dict[str, str] = {}
    artefacts: list[tuple[str, Path]] = []
    problems: list[str] = []
    for name in datasets:
        ds = case.dataset(name)
        key = f"{TAG}quality.{_tag_key(name)}"
        found = quality.latest_result(case, name)
        if found is None:
            tags[key] = "none"
            if ds.suite:
                problems.append(
                    f"dataset {name} has no quality result for suite {ds.suite}; run `idsp quality validate {name}`"
                )
            continue
        state = "passed" if found["success"] else "failed"
        tags[key] = f"{state} {found['passed']}/{found['evaluated']} suite={found['suite']}"
        tags[f"{key}.sha256"] = found["sha256"]
        path = case.root / ds.path
        current = quality.file_sha256(path) if path.is_file() else None
        same_data = current is not None and found.get("data_fingerprint") == current
        tags[f"{key}.data_match"] = str(same_data).lower()
        if not found["sha256_ok"]:
            problems.append(f"the quality result of dataset {name} was edited after it was written ({found['json_path']})")
        if not found["success"]:
            problems.append(f"dataset {name} failed its quality suite {found['suite']} ({found['html_path']})")
        if not same_data:
            problems.append(f"dataset {name} changed after its last quality validation; run `idsp quality validate {name}`")
        artefacts.append((f"quality/{name}", Path(found["json_path"])))
        if Path(found["html_path"]).is_file():
            artefacts.append((f"quality/{name}", Path(found["html_path"])))
    return tags, artefacts, problems


# -- the server ------------------------------------------------------------------------------


_ENV_OURS: set[str] = set()


def _client_env(config) -> None:
    """Short client retries: a dead server should be reported in seconds, not minutes.

    MLflow reads these variables on every request; a value the user set before idsp did
    is left alone, one idsp set follows the configuration in force.
    """
    wanted = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(config.tracking.retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(math.ceil(config.tracking.timeout_seconds))),
    }
    for key, value in wanted.items():
        if key not in os.environ or key in _ENV_OURS:
            os.environ[key] = value
            _ENV_OURS.add(key)


def tracking_uri(config) -> str:
    # Not MLFLOW_TRACKING_URI: mlflow.set_tracking_uri() rewrites that variable in-process,
    # so the platform setting (tracking.uri / IDSP_TRACKING__URI) is the one source.
    return config.tracking.client_uri()


def ensure_server(uri: str, config) -> None:
    """Wait for ``/health`` with brief retries; raise ``TrackingServerUnavailable`` naming it."""
    if not uri.startswith(("http://", "https://")):
        return
    attempts = config.tracking.retries + 1
    last = ""
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=config.tracking.timeout_seconds) as r:
                if r.status == 200:
                    return
                last = f"HTTP {r.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        if attempt + 1 < attempts:
            time.sleep(min(0.5 * 2**attempt, 4.0))
    raise TrackingServerUnavailable(
        f"the MLflow tracking server at {uri} does not answer ({last}; {attempts} attempts)",
        fix="Start it with `idsp tracking serve`, or point tracking.uri (or MLFLOW_TRACKING_URI) "
        "at the running server",
    )


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _unfinished_path(config) -> Path:
    return Path(config.home) / "mlflow" / UNFINISHED_FILE


def _remember_unfinished(config, uri: str, run_id: str, reason: str) -> None:
    path = _unfinished_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"uri": uri, "run_id": run_id, "reason": reason}) + "\n")


def _close_unfinished(client, config, uri: str) -> list[str]:
    """Mark runs whose end could not be written earlier as FAILED; return their ids."""
    path = _unfinished_path(config)
    if not path.is_file():
        return []
    keep, closed = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if item.get("uri") != uri:
            keep.append(line)
            continue
        try:
            client.set_tag(item["run_id"], f"{TAG}failure", item.get("reason", "")[:4000])
            client.set_terminated(item["run_id"], status="FAILED")
            closed.append(item["run_id"])
        except Exception:  # still unreachable or gone: keep it for the next time
            keep.append(line)
    fd, tmp = tempfile.mkstemp(dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("".join(x + "\n" for x in keep))
    os.replace(tmp, path)
    return closed


# -- the run ---------------------------------------------------------------------------------

_OPEN_RUNS: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _end_open_runs() -> None:
    for r in list(_OPEN_RUNS):
        r._finish("FAILED", "the Python process exited before the run was closed")


def run(case: Case, name: str, datasets: list[str] | tuple[str, ...] = (), **kw: Any) -> TrackedRun:
    """A gated MLflow run of ``case`` (use as a context manager); see ``TrackedRun``."""
    return TrackedRun(case, name, list(datasets), **kw)


class TrackedRun:
    """One MLflow run, asked of the gate, tagged with its provenance, checked for identifiers.

    Metrics are buffered and sent with ``log_batch`` (at most 1,000 per request, and at
    least every few seconds), so logging one metric at a time costs no round trip; the
    buffer is flushed when the run ends, also when the process exits inside the run.
    """

    def __init__(
        self,
        case: Case,
        name: str,
        datasets: list[str],
        *,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        experiment: str | None = None,
        config: PlatformConfig | None = None,
        actor: str | None = None,
        purpose: str = "use",
    ):
        self.case = case
        self.purpose = purpose
        self.name = name
        self.datasets = list(dict.fromkeys(datasets))
        self._initial_params = dict(params or {})
        self._initial_tags = dict(tags or {})
        self.experiment = experiment or case.id
        self._config = config
        self.actor = actor
        self.run_id: str | None = None
        self.official = False
        self.decision = None
        self.uri: str | None = None
        self._client = None
        self._metrics: list[Any] = []
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()
        self._ended = False
        self._fluent = False
        self._checked_names: set[str] = set()

    # -- lifecycle --

    def __enter__(self) -> TrackedRun:
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self._finish("FINISHED", raise_errors=True)
        else:
            self._finish("FAILED", f"{exc_type.__name__}: {exc}")
        return False

    @property
    def config(self):
        if self._config is None:
            from idsp.config import load_config

            self._config = load_config()
        return self._config

    def start(self) -> TrackedRun:
        from legal_ethics import audit, gate

        config = self.config
        check_text(self.name, "the run name")
        for key, value in {**self._initial_params, **self._initial_tags}.items():
            check_text(f"{key} {value}", f"{key!r}", kvk_context=_kvk_named(key))

        # 1. The gate, before anything reaches MLflow.
        decision = gate.check(self.case, self.datasets, purpose=self.purpose, config=config)
        if not decision.allowed:
            self._audit("run.refused", reasons=decision.reasons)
            raise GateRefused(
                f"the run gate refused run {self.name!r} of case {self.case.id} on "
                f"{', '.join(self.datasets) or 'no datasets'}",
                reasons=decision.reasons,
            )
        official = decision.official
        q_tags, q_artefacts, q_problems = _quality(self.case, self.datasets)
        if official and q_problems:
            self._audit("run.refused", reasons=q_problems)
            raise GateRefused(
                f"run {self.name!r} of case {self.case.id} is official and its data quality is not shown",
                reasons=q_problems,
            )
        self.decision = decision
        self.official = official

        # 2. The server, with brief retries.
        self.uri = tracking_uri(config)
        _client_env(config)
        ensure_server(self.uri, config)
        client = self._client = _client(self.uri)
        _close_unfinished(client, config, self.uri)

        # 3. One create_run with every provenance tag, so no run exists half-tagged.
        tags = self._provenance_tags(decision, q_tags)
        for key, value in self._initial_tags.items():
            tags[key] = str(value)
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is None:
            experiment_id = client.create_experiment(
                self.experiment,
                tags={f"{TAG}case_id": self.case.id, f"{TAG}zaaknummer": self.case.spec.zaaknummer},
            )
        else:
            experiment_id = experiment.experiment_id
        created = client.create_run(experiment_id, run_name=self.name, tags=tags)
        self.run_id = created.info.run_id
        _OPEN_RUNS.add(self)
        try:
            if self._initial_params:
                self.log_params(self._initial_params)
            for artifact_path, path in q_artefacts:
                client.log_artifact(self.run_id, str(path), artifact_path)
            if official:
                self._log_checklist()
            self._activate_fluent()
            started = self._audit(
                "run.started",
                run_id=self.run_id,
                official=official,
                approval_ids=list(decision.approval_ids),
                checklist_hash=decision.checklist_hash,
                tracking_uri=self.uri,
            )
            # The audit entry's seq and hash, kept by the tracking server too: whoever can
            # rewrite the log consistently cannot also rewrite what MLflow recorded.
            client.set_tag(self.run_id, AUDIT_TAG, f"{started['seq']}:{started['hash']}")
        except BaseException as exc:
            self._finish("FAILED", f"{type(exc).__name__}: {exc}")
            raise
        _ = audit  # imported first so a broken audit module fails before a run exists
        return self

    def _log_checklist(self) -> None:
        """The approved checklist as the reviewers saw it, beside the run (Markdown, HTML)."""
        from legal_ethics import render

        view = render.view(self.case, config=self.config)
        for ext, renderer in render.RENDERERS.items():
            text = renderer(view)
            try:
                check_text(text, f"checklist.{ext}")
            except PIIFound:
                self._client.set_tag(self.run_id, f"{TAG}checklist_artifact", "not logged: it contains identifiers")
                return
            self._client.log_text(self.run_id, text, f"checklist/checklist.{ext}")

    def _activate_fluent(self) -> None:
        """Make this the active fluent run, so ``mlflow.<flavor>.log_model`` lands in it."""
        import mlflow

        if mlflow.get_tracking_uri() != self.uri:
            mlflow.set_tracking_uri(self.uri)
        if mlflow.active_run() is None:
            mlflow.start_run(run_id=self.run_id)
            self._fluent = True

    def _provenance_tags(self, decision, quality_tags: dict[str, str]) -> dict[str, str]:
        spec = self.case.spec
        commit, dirty = git_state(self.case.root)
        bindings = decision.bindings or {}
        tags = {
            f"{TAG}case_id": spec.id,
            f"{TAG}zaaknummer": spec.zaaknummer,
            f"{TAG}case_type": spec.case_type,
            f"{TAG}inspectorates": ",".join(spec.inspectorates),
            f"{TAG}official": str(bool(decision.official)).lower(),
            f"{TAG}approval": ",".join(decision.approval_ids) if decision.official and decision.approval_ids else APPROVAL_NONE,
            f"{TAG}checklist_hash": decision.checklist_hash or "none",
            f"{TAG}checklist_status": getattr(decision, "status", "none") or "none",
            # what the approval allowed this run: development (build, evaluate) or use
            f"{TAG}purpose": self.purpose if decision.official else "exploration",
            f"{TAG}git.commit": commit,
            f"{TAG}git.dirty": "unknown" if dirty is None else str(dirty).lower(),
            f"{TAG}datasets": ",".join(self.datasets),
            f"{TAG}versions": json.dumps(package_versions(), sort_keys=True),
            f"{TAG}bindings": json.dumps(bindings, sort_keys=True, default=str)[:7900],
            f"{TAG}pseudonymisation.key_ids": json.dumps(_key_ids(self.case, self.datasets, self.config), sort_keys=True),
            "mlflow.source.git.commit": commit,
        }
        if "code" in bindings:
            tags[f"{TAG}code_hash"] = str(bindings["code"])
        if "params" in bindings:
            tags[f"{TAG}params_hash"] = str(bindings["params"])
        for name in self.datasets:
            ds = self.case.dataset(name)
            md5 = (bindings.get("data") or {}).get(name)
            if md5 is None:
                from legal_ethics import bindings as b

                md5 = b.dvc_md5(self.case, name)
            tags[f"{TAG}data.{_tag_key(name)}.dvc_md5"] = md5 or "none"
            tags[f"{TAG}data.{_tag_key(name)}.kind"] = (
                ("personal" if ds.personal_data else "non-personal") + (", synthetic" if ds.synthetic else ", real")
            )
        tags.update(quality_tags)
        return tags

    def _audit(self, event: str, **data: Any) -> dict[str, Any]:
        from legal_ethics import audit

        return audit.append(
            event,
            actor=self.actor or _whoami(),
            case_id=self.case.id,
            config=self.config,
            run_name=self.name,
            datasets=self.datasets,
            **data,
        )

    def _finish(self, status: str, reason: str | None = None, *, raise_errors: bool = False) -> None:
        """End the run once; with ``raise_errors`` a run that could not be ended cleanly raises."""
        if self._ended or self.run_id is None:
            return
        self._ended = True
        _OPEN_RUNS.discard(self)
        error = None
        try:
            self.flush()
        except Exception as exc:  # the end must still be attempted
            status, error = "FAILED", exc
            reason = (reason + "; " if reason else "") + f"metrics not all written: {exc}"
        try:
            if reason:
                self._client.set_tag(self.run_id, f"{TAG}failure", _scrub(reason))
            if self._fluent:
                import mlflow

                active = mlflow.active_run()
                if active is not None and active.info.run_id == self.run_id:
                    mlflow.end_run(status=status)
                else:
                    self._client.set_terminated(self.run_id, status=status)
            else:
                self._client.set_terminated(self.run_id, status=status)
        except Exception as exc:
            _remember_unfinished(self.config, self.uri, self.run_id, _scrub(reason or f"could not end: {exc}"))
            if self._fluent:
                _drop_fluent_run(self.run_id)
            error = error or exc
        try:
            self._audit("run.ended", run_id=self.run_id, status=status)
        except Exception:  # the audit log must not hide the run's own outcome
            pass
        if error is not None and raise_errors:
            raise TrackingServerUnavailable(
                f"run {self.run_id} could not be completed on the tracking server at {self.uri} ({error})",
                fix="It is recorded as unfinished and will be marked FAILED by the next run; "
                "check the server and log the run again",
            ) from None

    def end(self) -> None:
        """End the run as FINISHED (when not used as a context manager)."""
        self._finish("FINISHED", raise_errors=True)

    # -- logging --

    def _need_open(self) -> None:
        if self.run_id is None or self._ended:
            raise UserError(
                f"run {self.name!r} is not open",
                fix="Log inside `with case.run(...) as run:`",
            )

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        self._need_open()
        items = []
        for key, value in params.items():
            check_text(f"{key} {value}", f"parameter {key!r}", kvk_context=_kvk_named(key))
            items.append(Param(str(key), str(value)))
        for i in range(0, len(items), 100):
            self._call(self._client.log_batch, self.run_id, params=items[i : i + 100])

    def set_tag(self, key: str, value: Any) -> None:
        self._need_open()
        if key.startswith(TAG) or key.startswith("mlflow."):
            raise UserError(
                f"tag {key!r} is reserved for provenance",
                fix="Use a tag name that does not start with 'idsp.' or 'mlflow.'",
            )
        check_text(f"{key} {value}", f"tag {key!r}", kvk_context=_kvk_named(key))
        self._call(self._client.set_tag, self.run_id, key, str(value))

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        from mlflow.entities import Metric

        self._need_open()
        if key not in self._checked_names:
            check_text(key, f"metric name {key!r}")
            self._checked_names.add(key)
        metric = Metric(key, float(value), int(time.time() * 1000), int(step or 0))
        with self._lock:
            self._metrics.append(metric)
            full = len(self._metrics) >= BATCH_LIMIT
        if full or time.monotonic() - self._last_flush > FLUSH_SECONDS:
            self.flush()

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def flush(self) -> None:
        """Send buffered metrics now (``log_batch``, 1,000 per request)."""
        with self._lock:
            pending, self._metrics = self._metrics, []
            self._last_flush = time.monotonic()
        for i in range(0, len(pending), BATCH_LIMIT):
            try:
                self._call(self._client.log_batch, self.run_id, metrics=pending[i : i + BATCH_LIMIT])
            except BaseException:
                with self._lock:
                    self._metrics[:0] = pending[i:]
                raise

    def log_artifact(self, path: str | os.PathLike, artifact_path: str | None = None) -> None:
        self._need_open()
        check_file(Path(path))
        if Path(path).is_dir():
            self._call(self._client.log_artifacts, self.run_id, str(path), artifact_path)
        else:
            self._call(self._client.log_artifact, self.run_id, str(path), artifact_path)

    def log_text(self, text: str, artifact_file: str) -> None:
        self._need_open()
        check_text(f"{artifact_file}\n{text}", f"artefact {artifact_file}")
        self._call(self._client.log_text, self.run_id, text, artifact_file)

    def log_dict(self, data: dict[str, Any], artifact_file: str) -> None:
        self.log_text(json.dumps(data, indent=2, ensure_ascii=False, default=str), artifact_file)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        self._need_open()
        check_text(artifact_file, f"artefact {artifact_file}")
        for text in _figure_texts(figure):
            check_text(text, f"the labels of figure {artifact_file}")
        self._call(self._client.log_figure, self.run_id, figure, artifact_file)

    def log_model(self, model: Any, name: str = "model", *, flavor: str = "sklearn", **kw: Any) -> Any:
        """Log a model with an MLflow flavour into this run (checked names, no registration)."""
        import importlib

        self._need_open()
        check_text(name, f"model name {name!r}")
        module = importlib.import_module(f"mlflow.{flavor}")
        self._activate_fluent()
        return self._call(module.log_model, model, name=name, **kw)

    def log_fairness(self, y_true, y_pred, sensitive, control=None, **kw: Any) -> dict[str, Any]:
        """Fairness per group with bootstrap intervals: JSON artefact, metrics and a plot."""
        from idsp import fairness

        self._need_open()
        report = fairness.compute(y_true, y_pred, sensitive, control, **kw)
        self.log_dict(report, "reports/fairness.json")
        for key, value in fairness.headline_metrics(report).items():
            self.log_metric(key, value)
        figure = fairness.plot(report)
        try:
            self.log_figure(figure, "reports/fairness.png")
        finally:
            import matplotlib.pyplot as plt

            plt.close(figure)
        self.flush()
        return report

    def register_model(self, name: str, artifact_path: str = "model") -> dict[str, Any]:
        """Register this run's model; only an official, approved run may."""
        self._need_open()
        self.flush()
        return register_model(self.run_id, name, artifact_path=artifact_path, config=self.config, case=self.case)

    def model_card(self, *, log: bool = True) -> dict[str, Path]:
        """Write (and log) the model card of this run, Markdown and HTML."""
        from idsp import model_card

        self._need_open()
        self.flush()
        return model_card.write(self.run_id, log=log, config=self.config, case=self.case, run=self)

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if _is_connection_error(exc):
                raise TrackingServerUnavailable(
                    f"the MLflow tracking server at {self.uri} stopped answering during run {self.run_id} "
                    f"({type(exc).__name__})",
                    fix="The run will be marked FAILED; restart the server (`idsp tracking serve`) and run again",
                ) from None
            raise


def _figure_texts(figure: Any) -> list[str]:
    texts = []
    try:
        for ax in figure.get_axes():
            texts.append(ax.get_title())
            texts.append(ax.get_xlabel())
            texts.append(ax.get_ylabel())
            texts.extend(t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels())
            legend = ax.get_legend()
            if legend is not None:
                texts.extend(t.get_text() for t in legend.get_texts())
    except AttributeError:
        pass
    return [t for t in texts if t]


def _is_connection_error(exc: Exception) -> bool:
    text = f"{type(exc).__name__} {exc}"
    return any(
        s in text
        for s in ("ConnectionError", "Max retries exceeded", "Connection refused", "ConnectTimeout", "ReadTimeout")
    )


def _drop_fluent_run(run_id: str) -> None:
    """Forget a fluent run whose end could not be written, without another server call."""
    try:
        from mlflow.tracking import fluent

        stack = fluent._active_run_stack.get()
        stack[:] = [r for r in stack if r.info.run_id != run_id]
    except Exception:  # internals moved: at worst the next start_run reports it is nested
        pass


def _whoami() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


# -- registration and status -----------------------------------------------------------------


def register_model(
    run_id: str,
    name: str,
    *,
    artifact_path: str = "model",
    config=None,
    case: Case | None = None,
) -> dict[str, Any]:
    """Register ``runs:/<run_id>/<artifact_path>`` as ``name`` — only from an official run.

    The run's tags are not trusted on their own: the gate is asked again for the run's case
    and datasets, and its approval ids, checklist hash and DVC hashes must equal the tags.
    """
    from idsp.config import load_config

    config = config or load_config()
    uri = tracking_uri(config)
    _client_env(config)
    ensure_server(uri, config)
    client = _client(uri)
    run = client.get_run(run_id)
    tags = run.data.tags
    refuse = []
    if tags.get(f"{TAG}official") != "true" or tags.get(f"{TAG}approval", APPROVAL_NONE) == APPROVAL_NONE:
        refuse.append("the run is exploratory (idsp.approval=none); only official, approved runs can be registered")
    elif tags.get(f"{TAG}purpose") != "use":
        refuse.append(f"the run was made for {tags.get(f'{TAG}purpose', 'an unknown purpose')}, not for use: register "
                      "a model from a run started with purpose='use' under an approval for use")
    if run.info.status not in ("RUNNING", "FINISHED"):
        refuse.append(f"the run ended {run.info.status}")
    if not refuse:
        refuse.extend(_recheck_gate(tags, config, case))
    if refuse:
        raise GateRefused(f"model {name!r} cannot be registered from run {run_id}", reasons=refuse)
    check_text(name, f"model name {name!r}")
    import mlflow

    mlflow.set_tracking_uri(uri)
    version = mlflow.register_model(
        f"runs:/{run_id}/{artifact_path}",
        name,
        tags={
            f"{TAG}run_id": run_id,
            f"{TAG}approval": tags[f"{TAG}approval"],
            f"{TAG}checklist_hash": tags.get(f"{TAG}checklist_hash", ""),
            f"{TAG}case_id": tags.get(f"{TAG}case_id", ""),
        },
    )
    return {"name": version.name, "version": str(version.version), "run_id": run_id, "source": version.source}


def _recheck_gate(tags: dict[str, str], config, case: Case | None) -> list[str]:
    from idsp.case import Case
    from legal_ethics import gate

    if case is None:
        case = Case.open()
    if case.id != tags.get(f"{TAG}case_id"):
        return [f"the run belongs to case {tags.get(f'{TAG}case_id')}, not to the case opened here ({case.id})"]
    datasets = [d for d in tags.get(f"{TAG}datasets", "").split(",") if d]
    decision = gate.check(case, datasets, config=config)
    problems = list(decision.reasons)
    if ",".join(decision.approval_ids) != tags.get(f"{TAG}approval"):
        problems.append("the run's approval ids are not the approvals valid now")
    if (decision.checklist_hash or "none") != tags.get(f"{TAG}checklist_hash"):
        problems.append("the checklist changed since the run")
    for name in datasets:
        now = (decision.bindings.get("data") or {}).get(name) or "none"
        if now != tags.get(f"{TAG}data.{_tag_key(name)}.dvc_md5"):
            problems.append(f"dataset {name} is not the version the run used")
    return problems


def audit_anchors(config=None) -> dict[str, str | None]:
    """Run id -> its ``idsp.audit.entry`` tag ("<seq>:<hash>", or None when the run has no
    such tag) for every run on the tracking server, deleted ones included, for
    ``legal_ethics.audit.check_anchors``."""
    from mlflow.entities import ViewType

    from idsp.config import load_config

    config = config or load_config()
    uri = tracking_uri(config)
    _client_env(config)
    ensure_server(uri, config)
    client = _client(uri)
    experiments, token = [], None
    while True:
        page = client.search_experiments(view_type=ViewType.ALL, max_results=1000, page_token=token)
        experiments += [e.experiment_id for e in page]
        token = page.token
        if not token:
            break
    anchors: dict[str, str | None] = {}
    for start in range(0, len(experiments), 100):  # search_runs takes at most 100 experiments
        token = None
        while True:
            page = client.search_runs(experiments[start : start + 100], run_view_type=ViewType.ALL,
                                      max_results=1000, page_token=token)
            for r in page:
                anchors[r.info.run_id] = r.data.tags.get(AUDIT_TAG)
            token = page.token
            if not token:
                break
    return anchors


def last_run(case: Case, *, config=None) -> dict[str, Any] | None:
    """The newest run of a case (for ``idsp case status``), or None if there is none."""
    from idsp.config import load_config

    config = config or load_config()
    uri = tracking_uri(config)
    _client_env(config)
    ensure_server(uri, config)
    client = _client(uri)
    experiment = client.get_experiment_by_name(case.id)
    if experiment is None:
        return None
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        return None
    r = runs[0]
    tags = r.data.tags
    return {
        "run_id": r.info.run_id,
        "name": r.info.run_name,
        "status": r.info.status,
        "start_time": r.info.start_time,
        "end_time": r.info.end_time,
        "official": tags.get(f"{TAG}official") == "true",
        "approval": tags.get(f"{TAG}approval", APPROVAL_NONE),
        "git_commit": tags.get(f"{TAG}git.commit"),
        "datasets": [d for d in tags.get(f"{TAG}datasets", "").split(",") if d],
        "tracking_uri": uri,
    }
