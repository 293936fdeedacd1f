"""An approved case on a platform service with its root case agent, a real MLflow server with
the hub's login (``--auth``, the platform's ``models_auth``), real git and DVC, and the real
runner account: the world of the official-run tests (test_runner*.py)."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import yaml
from idsp.case import Case
from idsp.hub import accounts
from idsp.hub.case_access import CaseFolders
from idsp.hub.case_agent import Agent, serve
from idsp.hub.case_registry import CaseRegistry
from idsp.hub.mlflow_password import user_password
from idsp.hub.tracking import ADMIN_USER, auth_ini
from idsp.service import ACCESS_SCOPE, PREFIX
from idsp.service.app import Service, make_app
from idsp.service.case_api import CaseMaker
from idsp.service.case_mlflow import CaseExperiments
from idsp.service.models import all_routes as run_routes
from idsp.service.review_api import all_routes as review_routes
from jupyterhub.services.auth import HubOAuth
from testkit.ethics import answer_all, case_tree
from testkit.files import build_tree
from testkit.mlflow_server import start_server
from testkit.tools import tool_env
from tornado import web

from legal_ethics import init_checklist, state, workflow
from tests.service.servicekit import HubTokenTable, ServedService, user_model

CASE = "ce-risico"
PEOPLE = ("pim", "anna", "bob", "carol", "dirk", "root")
ROLES = {"jurist": "anna", "privacy-officer": "bob", "gemandateerd-verantwoordelijke": "carol", "ethicus": "dirk"}
TRAIN = '''"""The case's training stage: reads the official data in a gated run."""
import json
import pathlib

from idsp.case import Case
from riskpkg import features

case = Case.open()
with case.run("train", datasets=["inspecties"], purpose="use") as run:
    frame = case.load("inspecties")
    run.log_params({"feature_source": features.SOURCE})
    run.log_metrics({"rows": float(len(frame))})
    pathlib.Path("reports").mkdir(exist_ok=True)
    pathlib.Path("reports/train.json").write_text(json.dumps({"rows": len(frame), "source": features.SOURCE}))
    run.log_artifact("reports/train.json", "model")
    print("trained on", len(frame), "rows with", features.SOURCE, "features")
'''
DVC_YAML = """stages:
  train:
    cmd: python -m riskpkg.train
    deps:
      - src/riskpkg
      - data/inspecties.csv
    outs:
      - reports/train.json:
          cache: false
"""


def tokens() -> dict[str, dict]:
    out = {f"tok-{n}": user_model(n, []) for n in PEOPLE}
    out["tok-root"]["admin"] = True
    out["tok-dirk"]["admin"] = True
    out["tok-eve"] = user_model("eve", [])  # a hub user, not a member of the case
    return out


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, env=tool_env())
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def dvc(root: Path, *args: str) -> None:
    done = subprocess.run([str(Path(sys.executable).parent / "dvc"), *args], cwd=root, capture_output=True,
                          text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def build_case(cases: Path) -> Case:
    """The testkit's case in git with DVC, a pipeline stage that makes a gated run, committed."""
    tree = case_tree()
    tree["data"].pop("inspecties.csv.dvc")
    tree["src"] = {"riskpkg": {"__init__.py": "", "features.py": 'SOURCE = "tracked"\n', "train.py": TRAIN}}
    tree["dvc.yaml"] = DVC_YAML
    root = build_tree(cases / CASE, tree)
    git(root, "init", "-q")
    git(root, "config", "user.email", "pim@example.invalid")
    git(root, "config", "user.name", "pim")
    dvc(root, "init", "-q")
    dvc(root, "add", "-q", "data/inspecties.csv")
    (root / ".gitignore").write_text("/reports/train.json\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "case")
    return Case.open(root)


class RunWorld(ServedService):
    """The service (runs and models too) with a case maker: the agent and MLflow."""

    def __init__(self, base: Path, index: Path, cases: Path, mlflow_url: str, admin_password: str, key: str,
                 agent_socket: Path, prefix: str):  # fmt: skip
        super().__init__(base / "state", index, cases, tokens())
        self.mlflow_url, self.admin_password, self.key = mlflow_url, admin_password, key
        self.agent_socket, self.prefix = agent_socket, prefix

    async def _start(self) -> None:
        hub_port = self._listen(web.Application([("/hub/api/user", HubTokenTable, {"tokens": self.tokens})]))
        hub_auth = HubOAuth(api_url=f"http://127.0.0.1:{hub_port}/hub/api", api_token="the-service-own-token",
                            hub_prefix="/hub/", base_url=PREFIX, oauth_client_id="service-idsp",
                            access_scopes={ACCESS_SCOPE}, cache_max_age=60)  # fmt: skip
        self.service = Service(hub_auth, self.log, self.cases)
        experiments = CaseExperiments(self.mlflow_url, self.admin_password, self.key, self.log.folder.parent)
        self.service.case_maker = CaseMaker(self.agent_socket, experiments=experiments)
        self.service.user_prefix = self.prefix  # type: ignore[attr-defined]
        routes = [*review_routes(self.service), *run_routes(self.service)]
        port = self._listen(make_app(self.service, cookie_secret=b"x" * 32, extra_routes=routes))
        self.url = f"http://127.0.0.1:{port}{PREFIX}"

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"token {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=300, follow_redirects=False)

    def mlflow_auth(self, user: str) -> tuple[str, str]:
        return (user, user_password(self.key, user))

    def admin(self) -> tuple[str, str]:
        return (ADMIN_USER, self.admin_password)


def approve_through_service(svc: RunWorld, case: Case) -> None:
    """Every sign-off role approves through the service's review API (enrolled keys)."""
    from tests.service.test_review_api import enrol

    cfg = svc.service.review.decisions.config
    required = list(state.evaluate(case, config=cfg).definition.signoff_roles)
    for role in required:
        name = ROLES[role]
        key = enrol(svc, name, [role], admin="root" if name != "root" else "dirk")
        query = {"purpose": "use", "kind": "approve", "comment": "", "role": role, "public_key": key.public}
        shown = svc.client(f"tok-{name}").get(f"api/cases/{case.id}/decisions/payload", params=query)
        assert shown.status_code == 200, shown.text
        body = {"purpose": "use", "kind": "approve", "payload": shown.json()["payload"],
                "signature": key.sign(shown.json()["canonical"]), "reason": ""}  # fmt: skip
        r = svc.client(f"tok-{name}").post(f"api/cases/{case.id}/decisions", json=body)
        assert r.status_code == 201, r.text


def submitted_case(cases: Path, mlflow_url: str, admin_password: str) -> Case:
    """The default world's case: built, its checklist answered and submitted, committed."""
    case = build_case(cases)
    init_checklist(case, actor="pim")
    answer_all(case, actor="pim", only_blocking=True)
    workflow.submit(case, actor="pim", purpose="use")
    git(case.root, "add", "-A")
    git(case.root, "commit", "-qm", "checklist submitted")
    return case


def start_world(prefix: str, base: Path, build=submitted_case):
    """Everything up: returns (svc, case, server, agent server). ``build(cases, mlflow_url,
    admin_password)`` makes the case, submitted and committed; the service approves it."""
    from idsp.hub.supervisor import blocked_dirs

    accounts.open_search_bits(blocked_dirs(), True, who="the runner test", fix="", echo=lambda _: None)
    os.chmod(base, 0o711)
    admin_password = secrets.token_urlsafe(18)
    (base / "mlflow").mkdir()
    ini = base / "mlflow" / "basic_auth.ini"  # the hub's own MLflow login (hub/tracking.py auth_ini)
    ini.write_text(auth_ini(SimpleNamespace(mlflow_dir=base / "mlflow"), admin_password))  # type: ignore[arg-type]
    server = start_server(base / "mlflow", "--auth", "--auth-config", str(ini),
                          env={"MLFLOW_TRACKING_USERNAME": ADMIN_USER, "MLFLOW_TRACKING_PASSWORD": admin_password})  # fmt: skip
    cases = base / "cases"
    cases.mkdir(mode=0o711)
    case = build(cases, server.url, admin_password)
    index = base / "index.yaml"
    index.write_text(yaml.safe_dump({"cases": [{"id": case.id, "path": str(case.root), "title": "Risico",
                                                "members": list(PEOPLE)}]}))  # fmt: skip
    registry = CaseRegistry(base / "agent-registry.json")
    folders = CaseFolders(cases, None, base / "git", prefix, 0)
    agent = Agent(None, folders, registry, 0, 0, runs_root=base / "runner")
    sock = base / "agent" / "agent.sock"
    agent_server = serve(agent, sock, 0)
    threading.Thread(target=agent_server.serve_forever, daemon=True).start()
    svc = RunWorld(base, index, cases, server.url, admin_password, secrets.token_hex(32), sock, prefix)
    svc.__enter__()
    approve_through_service(svc, case)
    git(case.root, "add", "-A")
    # --no-verify: the CE template's detect-secrets hook takes review.yaml's hashes for secrets
    git(case.root, "commit", "-qm", "approved", "--no-verify")
    return svc, case, server, agent_server


def stop_world(svc, server, agent_server, prefix: str, base: Path) -> None:
    svc.__exit__(None, None, None)
    agent_server.shutdown()
    agent_server.server_close()
    server.stop()
    name = f"{prefix}svc-runner"
    subprocess.run(["userdel", name], capture_output=True)
    subprocess.run(["groupdel", name], capture_output=True)
    shutil.rmtree(base, ignore_errors=True)


def run_and_wait(svc: RunWorld, token: str, body: dict, timeout: float = 240, case_id: str = CASE) -> tuple[dict, str]:
    """POST a run and poll it to its end: (the last answer, every line it printed)."""
    with svc.client(token) as c:
        r = c.post(f"api/cases/{case_id}/runs", json=body)
        assert r.status_code == 202, r.text
        started, lines, offset = r.json(), [], 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = c.get(f"api/cases/{case_id}/runs/{started['run_id']}", params={"offset": offset}).json()
            lines.append(answer.get("lines", ""))
            offset = answer.get("offset", offset)
            if answer["status"] != "RUNNING" and not answer.get("lines"):
                return answer, "".join(lines)
            time.sleep(0.2)
    raise AssertionError(f"run {started['run_id']} did not end in {timeout} s: {''.join(lines)[-2000:]}")


def head(case: Case) -> str:
    return git(case.root, "rev-parse", "HEAD")


def run_tags(svc: RunWorld, run_id: str) -> dict:
    r = httpx.get(f"{svc.mlflow_url}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, auth=svc.admin())
    assert r.status_code == 200, r.text
    return r.json()["run"]
