"""An official run through the platform's runner against ``dvc repro`` of the same pipeline.

Run as root: ``.venv/bin/python bench/bench_runner.py [--repeat 3]``. It builds the world of
``tests/service/test_runner.py`` (the platform service with its root case agent, the runner
account, a real MLflow server with the hub's login, an approved case in git and DVC whose one
stage makes a gated run that reads the official data), then times, side by side in one run
(issue 13's target: at most +10 % or +5 s, whichever is larger):

- **runner**: ``POST api/cases/<id>/runs`` to the end seen by polling ``GET .../runs/<run>``:
  the service's clean checkout, data copy with md5 checks and gate, the MLflow run, the
  agent's checkout and data copy, ``dvc repro`` as the runner account, the end recorded;
- **direct**: ``dvc repro --force`` of the same commit and data as the same account with the
  same environment and the same kind of MLflow run, nothing else (the checkout made untimed).

Prints JSON and cleans up everything.
"""

from __future__ import annotations

import argparse
import asyncio
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def _direct(world, commit: str) -> float:
    """``dvc repro --force`` as the runner account in a prepared checkout: seconds."""
    from idsp.hub import runner
    from idsp.service.runner_mlflow import RunnerMlflow

    svc, case, base, prefix = world
    account = runner.ensure_account(prefix)
    work = base / "direct" / secrets.token_hex(4)
    work.mkdir(parents=True)
    checkout = work / "case"
    runner.clone(case.root, commit, checkout)
    runner.materialize(checkout, [case.root / ".dvc" / "cache"])
    for sub in ("home", "tmp", "idsp", "dvc-site"):
        (work / sub).mkdir()
    runner._give(work, account.pw_uid, account.pw_gid)
    mlflow = RunnerMlflow(svc.service.case_maker.experiments)
    loop = asyncio.new_event_loop()
    exp_id, user, password = loop.run_until_complete(mlflow.prepare(case.id, ["pim"]))
    run_id = loop.run_until_complete(mlflow.create_run(exp_id, "direct", {"idsp.bench": "direct"}))
    env = runner.run_env(checkout, work, {
        "IDSP_RUNNER_MLFLOW_RUN": run_id, "IDSP_RUNNER_PURPOSE": "use", "IDSP_RUNNER_OFFICIAL": "1",
        "IDSP_TRACKING__URI": mlflow.uri, "MLFLOW_TRACKING_USERNAME": user, "MLFLOW_TRACKING_PASSWORD": password,
    })  # fmt: skip
    t0 = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).parent / "dvc"), "repro", "--force"], cwd=checkout, env=env,
                          preexec_fn=runner._drop(account), capture_output=True, text=True)  # fmt: skip
    seconds = time.perf_counter() - t0
    loop.run_until_complete(mlflow.end_run(run_id, "FINISHED" if done.returncode == 0 else "FAILED"))
    loop.close()
    if done.returncode != 0:
        raise SystemExit(f"direct dvc repro failed: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    shutil.rmtree(work)
    return seconds


def _through_runner(svc, case) -> tuple[float, dict]:
    from tests.service.runkit import head, run_and_wait

    t0 = time.perf_counter()
    answer, lines = run_and_wait(svc, "tok-pim", {"commit": head(case), "purpose": "gebruik"})
    seconds = time.perf_counter() - t0
    if answer["status"] != "FINISHED":
        raise SystemExit(f"the runner's run failed: {lines[-3000:]}")
    return seconds, answer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_runner: run as root (the case agent and the runner account need it)")
    from tests.service.runkit import head, start_world, stop_world

    prefix = "b" + secrets.token_hex(3) + "-"
    base = Path(f"/tmp/idsp-runbench-{prefix[:-1]}")
    base.mkdir(mode=0o711)
    os.environ["IDSP_HOME"] = str(base / "idsp-home")
    (base / "idsp-home").mkdir()
    for k in ("IDSP_CONFIG", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL"):
        os.environ.pop(k, None)
    svc = server = agent = None
    try:
        svc, case, server, agent = start_world(prefix, base)
        world = (svc, case, base, prefix)
        _through_runner(svc, case)  # warm: the official experiment, the runner's MLflow account
        _direct(world, head(case))
        runner_s, direct_s = [], []
        for _ in range(args.repeat):
            runner_s.append(_through_runner(svc, case)[0])
            direct_s.append(_direct(world, head(case)))
        r, d = statistics.median(runner_s), statistics.median(direct_s)
        allowed = max(0.10 * d, 5.0)
        print(json.dumps({
            "benchmark": "official run through the runner vs dvc repro directly (issue 13)",
            "repeat": args.repeat, "runner_seconds": [round(x, 3) for x in runner_s],
            "direct_seconds": [round(x, 3) for x in direct_s],
            "paired_overhead_seconds": [round(a - b, 3) for a, b in zip(runner_s, direct_s, strict=True)],
            "runner_median": round(r, 3),
            "direct_median": round(d, 3), "overhead_seconds": round(r - d, 3),
            "overhead_percent": round(100 * (r - d) / d, 1), "allowed_seconds": round(allowed, 3),
            "target_met": (r - d) <= allowed, "cpus": os.cpu_count(), "load": os.getloadavg()[0],
        }, indent=2))  # fmt: skip
    finally:
        if svc is not None:
            stop_world(svc, server, agent, prefix, base)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
