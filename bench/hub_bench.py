"""Hub benchmark: spawn-to-ready (median, p95 of N spawns) and K concurrent simulated users.

Run as root: ``.venv/bin/python bench/hub_bench.py [--spawns 10] [--users 10]``. It starts its
own `idsp hub up` on free ports with a throw-away account prefix (like tests/hub), drives it
through the real login form, the REST API and kernel websockets (hubtraf's user journey:
log in, start server, start kernel, run 5 * 4, stop), prints JSON and cleans up everything.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.hub.conftest import RunningHub, _cleanup_accounts, free_port  # noqa: E402


def _env(prefix: str, shared: Path, home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDSP_")}
    env.update(
        IDSP_HOME=str(home),
        IDSP_HUB__PORT=str(free_port()),
        IDSP_HUB__HUB_PORT=str(free_port()),
        IDSP_HUB__PROXY_API_PORT=str(free_port()),
        IDSP_TRACKING__PORT=str(free_port()),
        IDSP_HUB__USER_PREFIX=prefix,
        IDSP_HUB__HOMES_ROOT=str(shared / "homes"),
        IDSP_PATHS__CASES_ROOT=str(shared / "cases"),
        IDSP_PATHS__CASE_INDEX=str(shared / "index.yaml"),
        # hubtraf's server-start timeout: a loaded 2-core box needs more than the default.
        IDSP_HUB__SPAWN_TIMEOUT_SECONDS="300",
    )
    return env


class LoadSampler(threading.Thread):
    """The 1-minute load average every 5 s while a part of the benchmark runs."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(5):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> dict:
        self.done.set()
        self.join()
        now = os.getloadavg()[0]
        values = self.samples or [now]
        return {"min": round(min(values), 2), "max": round(max(values), 2), "at_end": round(now, 2)}


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def journey(hub, admin, name):
    t = {}
    user = hub.user(name)
    t0 = time.monotonic()
    user.signup()
    admin.approve(name)
    assert user.login().status_code == 302
    t["login"] = time.monotonic() - t0
    t["server_start"] = user.spawn(timeout=300)
    t0 = time.monotonic()
    kernel = user.start_kernel()
    t["kernel_start"] = time.monotonic() - t0
    t0 = time.monotonic()
    out = user.execute(kernel, "print(5 * 4)")
    assert out["stdout"].strip() == "20", out
    t["code_execute"] = time.monotonic() - t0
    user.delete_kernel(kernel)
    t0 = time.monotonic()
    user.stop()
    t["server_stop"] = time.monotonic() - t0
    return t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spawns", type=int, default=10)
    ap.add_argument("--users", type=int, default=10)
    ap.add_argument("--logs", type=Path, help="copy the hub's logs (hub, proxy, MLflow) here before cleaning up")
    args = ap.parse_args()
    import secrets

    prefix = "b" + secrets.token_hex(3) + "-"
    shared = Path(f"/tmp/idsp-hubbench-{prefix[:-1]}")
    shared.mkdir(mode=0o755)
    home = Path(tempfile.mkdtemp(prefix="idsp-bench-home-"))
    hub = RunningHub(_env(prefix, shared, home), shared, prefix)
    result: dict = {"load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    try:
        hub.start()
        result["hub_start_s"] = round(hub.start_seconds, 2)
        hub.wait_tracking()
        admin = hub.user("admin", hub.admin_password())
        assert admin.login().status_code == 302
        # 1. spawn-to-ready, one user, N times (first spawn creates the account).
        solo = hub.user("solo")
        solo.signup()
        admin.approve("solo")
        solo.login()
        times = []
        load = LoadSampler()
        load.start()
        for _ in range(args.spawns):
            times.append(solo.spawn(timeout=300))
            solo.stop()
        result["spawn_to_ready_s"] = {
            "n": len(times),
            "first": round(times[0], 2),
            "median": round(statistics.median(times), 2),
            "p95": round(pct(times, 0.95), 2),
            "all": [round(t, 2) for t in times],
            "load_average_1min": load.stop(),
        }
        # 2. K concurrent users, hubtraf's journey.
        failures = 0
        runs = []
        t0 = time.monotonic()
        load = LoadSampler()
        load.start()
        with ThreadPoolExecutor(args.users) as pool:
            futures = [pool.submit(journey, hub, admin, f"u{i:02d}") for i in range(args.users)]
            for f in futures:
                try:
                    runs.append(f.result())
                except Exception as exc:  # counted, reported
                    failures += 1
                    print(f"failure: {exc!r}"[:300], file=sys.stderr)
        result["concurrent"] = {
            "users": args.users,
            "failures": failures,
            "wall_s": round(time.monotonic() - t0, 2),
            "load_average_1min": load.stop(),
            **{
                k: {"median": round(statistics.median(r[k] for r in runs), 2), "max": round(max(r[k] for r in runs), 2)}
                for k in ("login", "server_start", "kernel_start", "code_execute", "server_stop")
                if runs
            },
        }
    finally:
        hub.stop()
        _cleanup_accounts(prefix)
        import shutil

        if args.logs:
            shutil.copytree(home / "hub" / "logs", args.logs, dirs_exist_ok=True)
        shutil.rmtree(shared, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "hub.json").write_text(json.dumps(result, indent=2))
    return 0 if result.get("concurrent", {}).get("failures", 1) == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
