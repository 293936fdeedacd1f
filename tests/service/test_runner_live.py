"""`idsp run` on a real hub: `idsp hub up` (root agent, service as its own account, the runner
account it made, MLflow with the hub's login), a case made through the service, and the CLI
in the lead's own server. The run goes through the service's clean checkout (read through the
case's ACL) and the agent's runner; a dirty tree and a non-member are refused with messages.
"""

from __future__ import annotations

import json
import pwd

import pytest

from tests.hub.conftest import approved_user
from tests.service.test_service_cases_live import _cli, _service_up
from tests.service.test_service_live import platform_home

pytestmark = pytest.mark.slow
CASE = "ce-run-live-1"


@pytest.fixture(scope="module", autouse=True)
def platform(hub_env):
    return platform_home(hub_env)


@pytest.fixture(scope="module")
def people(hub, admin):
    users = {name: approved_user(hub, admin, name) for name in ("lena", "eva")}
    r = admin.api("POST", "/groups/projectleiders")
    assert r.status_code in (201, 409), r.text
    admin.add_to_group("projectleiders", ["lena"])
    _service_up(hub)
    hub.wait_tracking()
    for user in users.values():
        user.spawn()
    done = _cli(users["lena"], "case", "new", CASE, "--type", "generic", "--json", "--data", "zaaknummer=ILT-2026-000901")
    assert done["rc"] == 0, done
    return users


def _in_case(user, *cmd: str) -> dict:
    code = f"""
import json, pathlib, subprocess
case = pathlib.Path.home() / "cases" / {CASE!r}
done = subprocess.run({list(cmd)!r}, cwd=case, capture_output=True, text=True)
print(json.dumps({{"rc": done.returncode, "out": done.stdout, "err": done.stderr}}))
"""
    out = user.run(code)
    assert out["status"] == "ok", out
    return json.loads(out["stdout"].strip().splitlines()[-1])


def test_idsp_run_in_the_leads_server_runs_the_committed_pipeline_as_the_runner(hub, people, platform):
    _home, prefix = platform
    assert pwd.getpwnam(f"{prefix}svc-runner")  # made by `idsp hub up`
    done = _in_case(people["lena"], "idsp", "run", "--purpose", "gebruik", "--json")
    if done["rc"] != 0:
        logs = hub.home / "hub" / "logs"
        dump = "\n".join(f"--- {f.name}\n{f.read_text(errors='replace')[-8000:]}" for f in sorted(logs.glob("*.log")))
        raise AssertionError(f"{done}\n{dump}")
    ended = json.loads(done["out"])
    assert ended["status"] == "FINISHED" and ended["exit_code"] == 0, (done, hub.log()[-3000:])
    assert ended["runner"] == f"{prefix}svc-runner" and ended["mlflow_link"].startswith("/services/mlflow/#/experiments/")
    assert not ended["official"]  # the template's data are synthetic: an exploratory run, by the platform


def test_a_dirty_tree_is_refused_naming_the_path(people):
    lena = people["lena"]
    done = _in_case(lena, "sh", "-c", "echo x > loose.py && idsp run --purpose gebruik")
    assert done["rc"] == 1 and "loose.py" in done["err"] and "not committed" in done["err"], done
    assert "Traceback" not in done["err"]
    _in_case(lena, "rm", "-f", "loose.py")


def test_a_non_member_is_refused(people):
    # eva has no ~/cases/<case>: she asks the service directly, with her server's token
    code = f"""
import json, os, httpx
url = os.environ["IDSP_SERVICE_URL"].rstrip("/") + "/api/cases/{CASE}/runs"
r = httpx.post(url, json={{"commit": "a" * 40, "purpose": "gebruik"}},
               headers={{"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]}})
print(json.dumps({{"status": r.status_code, "body": r.json()}}))
"""
    out = people["eva"].run(code)
    seen = json.loads(out["stdout"].strip().splitlines()[-1])
    assert seen["status"] == 403 and "is not one of your cases" in seen["body"]["error"], seen
