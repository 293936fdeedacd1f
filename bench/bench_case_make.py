"""Making a case through the platform service against making it as root; a member's way in.

Run as root: ``.venv/bin/python bench/bench_case_make.py [--repeat 3]``. It starts its own
`idsp hub up` on free ports with a throw-away account prefix (like tests/hub), signs up a
project lead and a data scientist, and times, side by side (issue 11's targets):

- ``idsp case new`` as root, in-process (today's way) against the same command run as the
  project lead's OS account with her server's token, through the platform service (its
  root agent renders the case in a staging folder, sets the ACLs, moves it into place, and
  the service makes the MLflow experiment): target at most 1.2x;
- from ``POST api/cases/<id>/members`` to the member's RUNNING server reading and writing the
  case (no respawn): target at most 2 s.

Prints JSON and cleans up everything.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hub.conftest import IDSP, RunningHub, _cleanup_accounts, approved_user, free_port  # noqa: E402
from tests.service.test_service_live import _port_pair  # noqa: E402

SERVICE_SIDE: list[dict] = []  # the service's own timing of each case it made


def _env(prefix: str, shared: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDSP_")}
    env.update(
        IDSP_HOME=str(shared / "platform"),
        IDSP_HUB__PORT=str(free_port()),
        IDSP_HUB__HUB_PORT=str(free_port()),
        IDSP_HUB__PROXY_API_PORT=str(_port_pair()),
        IDSP_TRACKING__PORT=str(free_port()),
        IDSP_HUB__USER_PREFIX=prefix,
        IDSP_HUB__HOMES_ROOT=str(shared / "homes"),
        IDSP_PATHS__CASES_ROOT=str(shared / "cases"),
        IDSP_PATHS__CASE_INDEX=str(shared / "index.yaml"),
        IDSP_DVC__REMOTE_URL=str(shared / "dvc-remote"),
        IDSP_HUB__SPAWN_TIMEOUT_SECONDS="300",
    )
    return env


def _new_args(case_id: str) -> list[str]:
    return [IDSP, "case", "new", case_id, "--type", "generic", "--defaults", "--json",
            "--data", "zaaknummer=ILT-2026-000900", "--data", f"title=Bench {case_id}"]  # fmt: skip


def as_root(env: dict, case_id: str) -> float:
    t0 = time.monotonic()
    done = subprocess.run(_new_args(case_id), env=env, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    if done.returncode != 0:
        raise SystemExit(f"idsp case new as root failed: {done.stderr[-800:]}")
    return seconds


def through_service(hub: RunningHub, os_name: str, token: str, case_id: str) -> float:
    from idsp.service.hubconfig import SERVICE_ACCOUNT_ENV
    from jupyterhub.spawner import set_user_setuid

    port = int(hub.env["IDSP_HUB__PROXY_API_PORT"]) + 1
    env = {
        "PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": f"{hub.env['IDSP_HUB__HOMES_ROOT']}/{os_name}",
        "JUPYTERHUB_API_TOKEN": token, "JUPYTERHUB_API_URL": f"http://127.0.0.1:{hub.env['IDSP_HUB__HUB_PORT']}/hub/api",
        "IDSP_SERVICE_URL": f"http://127.0.0.1:{port}/services/idsp/",
        SERVICE_ACCOUNT_ENV: f"{hub.prefix}svc-idsp",
    }  # fmt: skip
    t0 = time.monotonic()
    done = subprocess.run(_new_args(case_id), env=env, capture_output=True, text=True,
                          preexec_fn=set_user_setuid(os_name), cwd="/")  # fmt: skip
    seconds = time.monotonic() - t0
    if done.returncode == 0:
        made = json.loads(done.stdout)
        SERVICE_SIDE.append({"service": made.get("seconds"), "agent": made.get("agent_seconds")})
    if done.returncode != 0:
        raise SystemExit(
            f"idsp case new through the service failed: {done.stdout[-400:]} {done.stderr[-800:]}"
        )
    return seconds


def member_access(hub: RunningHub, lead_token: str, member, case_id: str) -> float:
    import httpx

    url = f"{hub.url}/services/idsp/api/cases/{case_id}/members"
    auth = {"Authorization": f"token {lead_token}"}
    kernel = member.start_kernel()
    code = f"""
import pathlib
case = pathlib.Path.home() / "cases" / {case_id!r}
print(len((case / "case.yaml").read_text()) > 0)
(case / "bench-{member.name}.txt").write_text("x")
"""
    try:
        assert member.execute(kernel, "print(1)")["stdout"].strip() == "1"  # the kernel is up
        t0 = time.monotonic()
        r = httpx.post(url, json={"user": member.name}, headers=auth, timeout=60)
        assert r.status_code == 201, r.text
        out = member.execute(kernel, code)
        seconds = time.monotonic() - t0
        assert out["status"] == "ok" and out["stdout"].strip() == "True", out
    finally:
        member.delete_kernel(kernel)
    r = httpx.delete(f"{url}/{member.name}", headers=auth, timeout=60)
    assert r.status_code == 200, r.text
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark starts a hub with OS accounts")
    prefix = "b" + secrets.token_hex(3) + "-"
    shared = Path(f"/tmp/idsp-benchcase-{prefix[:-1]}")
    shared.mkdir(mode=0o755)
    (shared / "platform").mkdir(mode=0o711)
    hub = RunningHub(_env(prefix, shared), shared, prefix)
    try:
        hub.start()
        hub.wait_tracking()
        admin = hub.user("admin", hub.admin_password())
        assert admin.login().status_code == 302
        lead, member = approved_user(hub, admin, "lena"), approved_user(hub, admin, "daan")
        assert admin.api("POST", "/groups/projectleiders").status_code in (201, 409)
        admin.add_to_group("projectleiders", ["lena"])
        lead.spawn()
        member.spawn()
        r = lead.api("POST", "/users/lena/tokens", json={"note": "bench"})
        token = r.json()["token"]
        root_s = [as_root(hub.env, f"ce-bench-root-{i}") for i in range(args.repeat)]
        svc_s = [
            through_service(hub, f"{prefix}lena", token, f"ce-bench-svc-{i}")
            for i in range(args.repeat)
        ]
        access = [
            member_access(hub, token, member, f"ce-bench-svc-{i}") for i in range(args.repeat)
        ]
        root_m, svc_m = statistics.median(root_s), statistics.median(svc_s)
        result = {
            "case_make_seconds": {"as_root": root_s, "through_service": svc_s},
            "median": {"as_root": round(root_m, 2), "through_service": round(svc_m, 2),
                       "ratio": round(svc_m / root_m, 2), "target_ratio": 1.2},
            "service_side_seconds": SERVICE_SIDE,
            "member_access_seconds": {"runs": [round(s, 3) for s in access],
                                      "max": round(max(access), 3), "target": 2.0},
        }  # fmt: skip
        print(json.dumps(result, indent=1))
        print(f"\n{'':32}{'as root':>10}{'service':>10}{'ratio':>8}  target")
        print(
            f"{'idsp case new (median, s)':32}{root_m:>10.2f}{svc_m:>10.2f}{svc_m / root_m:>8.2f}  <= 1.2x"
        )
        print(
            f"{'member added -> opens case (s)':32}{'':>10}{max(access):>10.2f}{'':>8}  <= 2 s (max of {len(access)})"
        )
    finally:
        try:
            admin = hub.user("admin", hub.admin_password())
            if admin.login().status_code == 302:
                for u in admin.api("GET", "/users").json():
                    if u.get("servers"):
                        admin.api("DELETE", f"/users/{u['name']}/server")
        except Exception:  # noqa: BLE001 - cleaning up after a failure
            pass
        hub.stop()
        subprocess.run([IDSP, "hub", "down", "--servers"], env=hub.env, capture_output=True)
        _cleanup_accounts(prefix)
        shutil.rmtree(shared, ignore_errors=True)


if __name__ == "__main__":
    main()
