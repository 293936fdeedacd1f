"""Cases and members through the platform service on a real hub: real users, servers, MLflow.

A project lead makes a case from her own server with the CLI; the folder is root's, closed to
everyone but its people (ACLs), and its MLflow experiment is the service's. A member whose
server is already running can read, write and commit within 2 s of being added, and loses
access at once when removed. A non-lead, a non-owner and a non-member are refused with the
service's reason; an experiment squatting the case's name is renamed aside, never adopted.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.hub.conftest import approved_user
from tests.service.test_service_live import _service_up, platform_home

pytestmark = pytest.mark.slow
CASE = "ce-svc-made-1"
SQUAT = "ce-svc-squat-1"


@pytest.fixture(scope="module", autouse=True)
def platform(hub_env):
    return platform_home(hub_env)


@pytest.fixture(scope="module")
def people(hub, admin):
    users = {name: approved_user(hub, admin, name) for name in ("lena", "daan", "eva")}
    r = admin.api("POST", "/groups/projectleiders")
    assert r.status_code in (201, 409), r.text
    admin.add_to_group("projectleiders", ["lena"])
    _service_up(hub)
    hub.wait_tracking()
    for user in users.values():
        try:
            user.spawn()
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{hub.log()}") from None
    return users


def _token(user) -> str:
    r = user.api("POST", f"/users/{user.name}/tokens", json={"note": "cases test"})
    assert r.status_code == 201, r.text
    return r.json()["token"]


def _api(hub, token: str, method: str, path: str, **kw) -> httpx.Response:
    return httpx.request(method, f"{hub.url}/services/idsp/{path}", headers={"Authorization": f"token {token}"},
                         timeout=300, **kw)  # fmt: skip


def _cli(user, *args: str) -> dict:
    """`idsp ARGS` in the user's own server (their OS account, their server's environment)."""
    code = f"""
import json, subprocess
done = subprocess.run(["idsp", *{list(args)!r}], capture_output=True, text=True)
print(json.dumps({{"rc": done.returncode, "out": done.stdout, "err": done.stderr}}))
"""
    out = user.run(code)
    assert out["status"] == "ok", out
    return json.loads(out["stdout"].strip().splitlines()[-1])


def _as_os(name: str, *cmd: str) -> subprocess.CompletedProcess:
    from jupyterhub.spawner import set_user_setuid

    return subprocess.run(
        list(cmd), capture_output=True, text=True, preexec_fn=set_user_setuid(name), cwd="/"
    )


@pytest.fixture(scope="module")
def made(hub, people, platform):
    _home, prefix = platform
    t0 = time.monotonic()
    done = _cli(people["lena"], "case", "new", CASE, "--type", "generic", "--json",
                "--data", "zaaknummer=ILT-2026-000777", "--data", "title=Zaak via de dienst")  # fmt: skip
    seconds = time.monotonic() - t0
    assert done["rc"] == 0, done
    result = json.loads(done["out"])
    print(f"\ncase made through the service (CLI in lena's server): {seconds:.2f} s")
    return result


def test_a_project_lead_makes_a_case_from_her_server_closed_to_others(hub, people, made, platform):
    home, prefix = platform
    path = Path(made["path"])
    assert path == Path(hub.env["IDSP_PATHS__CASES_ROOT"]) / CASE and made["role"] == "owner"
    info = path.stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode) & 0o007) == (0, 0, 0)
    acl = subprocess.run(
        ["getfacl", "-p", "-n", str(path)], capture_output=True, text=True, check=True
    ).stdout
    import pwd

    lena, svc = pwd.getpwnam(f"{prefix}lena"), pwd.getpwnam(f"{prefix}svc-idsp")
    assert (
        f"user:{lena.pw_uid}:rwx" in acl and f"user:{svc.pw_uid}:r-x" in acl and "other::---" in acl
    )
    assert f"default:user:{lena.pw_uid}:rwx" in acl
    refused = _as_os(f"{prefix}eva", "cat", str(path / "case.yaml"))
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    # lena sees it in her file browser's home, and it is in her list
    assert os.readlink(Path(lena.pw_dir) / "cases" / CASE) == str(path)
    # no staging folder is left, and the old index does not get it
    assert list((path.parent / ".staging").iterdir()) == []


def test_the_service_made_the_mlflow_experiment_and_recorded_it(hub, made, platform):
    home, _prefix = platform
    record = json.loads((home / "service" / "mlflow-experiments.json").read_text())["experiments"]
    admin_pw = (home / "secrets" / "mlflow-admin-password").read_text().strip()
    r = httpx.get(f"http://127.0.0.1:{hub.env['IDSP_TRACKING__PORT']}/api/2.0/mlflow/experiments/get-by-name",
                  params={"experiment_name": CASE}, auth=("idsp-mlflow-admin", admin_pw))  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["experiment"]["experiment_id"] == record[CASE] == made["experiment_id"]


def test_a_user_who_is_not_a_project_lead_is_refused_with_the_group_named(people):
    done = _cli(
        people["daan"], "case", "new", "ce-svc-daan-1", "--data", "zaaknummer=ILT-2026-000778"
    )
    assert done["rc"] == 1, done
    assert "projectleiders" in done["err"] and "Traceback" not in done["err"]


def test_a_member_added_reads_writes_and_commits_at_once_and_loses_it_at_once(hub, people, made):
    lena_token, daan = _token(people["lena"]), people["daan"]
    path = Path(made["path"])
    kernel = daan.start_kernel()  # daan's server runs from before he was a member
    try:
        probe = f"""
import os, time, json, subprocess
p = {str(path / "case.yaml")!r}
t0 = time.monotonic()
print(json.dumps({{"can": os.access(p, os.R_OK)}}))
"""
        before = json.loads(daan.execute(kernel, probe)["stdout"].strip())
        assert before == {"can": False}
        t0 = time.monotonic()
        r = _api(hub, lena_token, "POST", f"api/cases/{CASE}/members", json={"user": "daan"})
        assert r.status_code == 201, r.text
        opened = daan.execute(
            kernel,
            f"""
import pathlib
case = pathlib.Path.home() / "cases" / {CASE!r}
print(len((case / "case.yaml").read_text()) > 0)
(case / "notes-daan.md").write_text("door daan\\n")
""",
        )
        seconds = time.monotonic() - t0
        assert opened["status"] == "ok" and opened["stdout"].strip() == "True", opened
        print(f"\nmember added -> reads and writes the case in his running server: {seconds:.2f} s "
              f"(the service's grant: {r.json()['access_seconds']:.3f} s)")  # fmt: skip
        assert seconds < 2.0
        work = f"""
import json, subprocess, pathlib
case = pathlib.Path.home() / "cases" / {CASE!r}
git = lambda *a: subprocess.run(["git", "-C", str(case), *a], capture_output=True, text=True)
add, commit = git("add", "notes-daan.md"), git("commit", "-qm", "daan schrijft")
print(json.dumps({{"commit": commit.returncode, "err": commit.stderr[-400:],
                   "author": git("log", "-1", "--format=%an").stdout.strip()}}))
"""
        out = daan.execute(kernel, work)
        assert out["status"] == "ok", out
        seen = json.loads(out["stdout"].strip().splitlines()[-1])
        assert seen == {"commit": 0, "err": seen["err"], "author": "daan"}, seen
        # lena (the first member) commits after him: git keeps the repository shared
        lena = _cli(people["lena"], "case", "members", "list", CASE, "--json")
        assert lena["rc"] == 0 and json.loads(lena["out"])["members"] == ["daan"]
        out = people["lena"].run(f"""
import subprocess, pathlib
case = pathlib.Path.home() / "cases" / {CASE!r}
(case / "notes-lena.md").write_text("door lena\\n")
subprocess.run(["git", "-C", str(case), "add", "notes-lena.md"], check=True)
print(subprocess.run(["git", "-C", str(case), "commit", "-qm", "lena"], capture_output=True, text=True).returncode)
""")
        assert out["stdout"].strip().splitlines()[-1] == "0", out
        # removed through the CLI in lena's server: his running kernel loses access at once
        removed = _cli(people["lena"], "case", "members", "remove", CASE, "daan")
        assert removed["rc"] == 0, removed
        after = json.loads(daan.execute(kernel, probe)["stdout"].strip())
        assert after == {"can": False}
        assert not os.path.lexists(
            Path(f"{hub.env['IDSP_HUB__HOMES_ROOT']}/{hub.prefix}daan/cases/{CASE}")
        )
    finally:
        daan.delete_kernel(kernel)


def test_only_owners_change_members_and_others_get_one_answer(hub, people, made):
    daan, eva = _token(people["daan"]), _token(people["eva"])
    answers = [
        _api(hub, daan, "POST", f"api/cases/{CASE}/members", json={"user": "eva"}),
        _api(hub, eva, "GET", f"api/cases/{CASE}/members"),
        _api(hub, eva, "POST", "api/cases/ce-does-not-exist/members", json={"user": "eva"}),
    ]
    assert {r.status_code for r in answers} == {403}
    assert len({r.json()["error"].replace("ce-does-not-exist", CASE) for r in answers}) == 1
    mine = _api(hub, eva, "GET", "api/cases").json()["cases"]
    assert CASE not in [c["id"] for c in mine]
    lena = _api(hub, _token(people["lena"]), "GET", "api/cases").json()["cases"]
    assert [(c["id"], c["role"]) for c in lena if c["id"] == CASE] == [(CASE, "owner")]
    bad = _api(
        hub,
        _token(people["lena"]),
        "POST",
        f"api/cases/{CASE}/members",
        json={"user": "nobody_here"},
    )
    assert bad.status_code == 400 and "nobody_here" in bad.json()["error"]


def test_an_experiment_squatting_the_case_name_is_not_adopted(hub, people, platform):
    home, _prefix = platform
    from idsp.hub.mlflow_password import user_password

    key = (home / "secrets" / "mlflow-user-key").read_text().strip()
    mlflow = f"http://127.0.0.1:{hub.env['IDSP_TRACKING__PORT']}"
    r = httpx.post(f"{mlflow}/api/2.0/mlflow/experiments/create", json={"name": SQUAT},
                   auth=("eva", user_password(key, "eva")))  # fmt: skip
    assert r.status_code == 200, r.text
    squat = r.json()["experiment_id"]
    r = _api(hub, _token(people["lena"]), "POST", "api/cases",
             json={"case_id": SQUAT, "data": {"zaaknummer": "ILT-2026-000779"}})  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["experiment_id"] not in (None, squat)
    admin_pw = (home / "secrets" / "mlflow-admin-password").read_text().strip()
    r = httpx.get(f"{mlflow}/api/2.0/mlflow/experiments/get", params={"experiment_id": squat},
                  auth=("idsp-mlflow-admin", admin_pw))  # fmt: skip
    assert r.json()["experiment"]["name"] == f"{SQUAT}.squatted-{squat}"
