"""Benchmark (issue 5b): metrics per second when the caller logs one metric at a time.

Three ways against one local tracking server (`idsp tracking serve`, SQLite), side by side:
  naive     mlflow.log_metric in a loop (one HTTP request per point);
  log_batch MlflowClient.log_batch with 1,000 metrics per request (the baseline to reach);
  idsp      run.log_metric one at a time inside `with case.run(...)` (buffered log_batch).
After each, the points on the server are counted. A last case logs through idsp in a
child process that exits right after its last call without closing the run: every point
must still arrive (the exit handler flushes, and marks the unclosed run FAILED).
Issue anchor: naive 15 per second, log_batch about 4,200 per second.

Run: .venv/bin/python bench/tracking.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]

CASE_YAML = """\
id: bench-tracking
title: Benchmark
zaaknummer: ILT-2026-000001
inspectorates: [ILT]
datasets:
  - {name: synthetisch, path: data/synthetisch.csv, personal_data: false, synthetic: true}
"""

CHILD = """\
import sys
sys.path[:0] = [{platform!r}, {root!r}]
from idsp.case import Case
run = Case.open({case!r}).run("exit-right-after", datasets=["synthetisch"]).start()
print(run.run_id, flush=True)
for i in range({n}):
    run.log_metric("m", float(i), step=i)
# no run.end(), no with-block: the interpreter exits right after the last call
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "IDSP_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from idsp.cli import main; main()", "tracking", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("tracking server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--naive", type=int, default=None, help="points for the naive loop")
    parser.add_argument("--points", type=int, default=None, help="points for log_batch and idsp")
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds of log_batch and idsp")
    args = parser.parse_args()
    naive_n = args.naive or (100 if args.quick else 300)
    n = args.points or (10_000 if args.quick else 30_000)

    import mlflow
    from idsp.case import Case
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient
    from rich.console import Console
    from rich.table import Table

    tmp = Path(tempfile.mkdtemp(prefix="idsp-bench-tracking-"))
    home = tmp / "home"
    os.environ["IDSP_HOME"] = str(home)
    proc, url = start_server(home)
    os.environ["IDSP_TRACKING__URI"] = url
    case_root = tmp / "case"
    (case_root / "data").mkdir(parents=True)
    (case_root / "case.yaml").write_text(CASE_YAML)
    (case_root / "data" / "synthetisch.csv").write_text("a,b\n1,2\n")
    case = Case.open(case_root)
    client = MlflowClient(url)
    mlflow.set_tracking_uri(url)
    rows = []
    try:
        exp = client.create_experiment("bench-baselines")

        # naive: one request per point
        run = client.create_run(exp, run_name="naive")
        with mlflow.start_run(run_id=run.info.run_id):
            t = time.perf_counter()
            for i in range(naive_n):
                mlflow.log_metric("m", float(i), step=i)
            naive_s = time.perf_counter() - t
        rows.append(("naive mlflow.log_metric loop", naive_n, naive_s, len(client.get_metric_history(run.info.run_id, "m"))))

        # log_batch (1,000 per request, batched by hand) and idsp (one call per point),
        # alternated `repeat` times so load from elsewhere hits both alike; median shown.
        batch_runs, idsp_runs = [], []
        for _ in range(args.repeat):
            run = client.create_run(exp, run_name="log_batch")
            t = time.perf_counter()
            now = int(time.time() * 1000)
            for start in range(0, n, 1000):
                batch = [Metric("m", float(i), now, i) for i in range(start, min(start + 1000, n))]
                client.log_batch(run.info.run_id, metrics=batch)
            batch_runs.append((time.perf_counter() - t, run.info.run_id))
            client.set_terminated(run.info.run_id)

            t = time.perf_counter()
            with case.run("idsp-one-at-a-time", datasets=["synthetisch"]) as r:
                t_logging = time.perf_counter()
                for i in range(n):
                    r.log_metric("m", float(i), step=i)
            idsp_runs.append((time.perf_counter() - t_logging, r.run_id, time.perf_counter() - t))
        batch_s, batch_id = sorted(batch_runs)[len(batch_runs) // 2]
        idsp_s, idsp_id, whole_s = sorted(idsp_runs)[len(idsp_runs) // 2]
        rows.append((f"MlflowClient.log_batch (1,000/request), median of {args.repeat}", n, batch_s, len(client.get_metric_history(batch_id, "m"))))
        rows.append((f"idsp run.log_metric, one at a time, median of {args.repeat}", n, idsp_s, len(client.get_metric_history(idsp_id, "m"))))
        lost = [rid for _, rid, *_ in batch_runs + idsp_runs if len(client.get_metric_history(rid, "m")) != n]
        if lost:
            raise SystemExit(f"points lost in runs {lost}")

        # idsp in a process that exits right after the last call
        script = CHILD.format(platform=str(ROOT / "platform"), root=str(ROOT), case=str(case_root), n=n)
        t = time.perf_counter()
        child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ.copy())
        child_s = time.perf_counter() - t
        if child.returncode != 0:
            raise SystemExit(child.stderr[-2000:])
        child_id = child.stdout.split()[0]
        child_count = len(client.get_metric_history(child_id, "m"))
        child_status = client.get_run(child_id).info.status
        rows.append((f"idsp, process exits after last call (run {child_status})", n, None, child_count))
    finally:
        proc.terminate()
        proc.wait(timeout=60)

    console = Console(width=140)
    table = Table(title="Logging one metric at a time: metrics per second on a local server (SQLite)")
    for col in ("way", "points", "seconds", "metrics / s", "points on server", "nothing lost"):
        table.add_column(col, justify="right")
    for way, count, seconds, stored in rows:
        table.add_row(
            way,
            f"{count:,}",
            "-" if seconds is None else f"{seconds:.2f}",
            "-" if seconds is None else f"{count / seconds:,.0f}",
            f"{stored:,}",
            "yes" if stored == count else "NO",
        )
    console.print(table)
    console.print(
        f"idsp whole run including gate, provenance, run creation and end: {whole_s:.2f} s; "
        f"child process (start-up, imports, {n:,} points, exit): {child_s:.2f} s.\n"
        "Issue anchor: naive 15 / s, log_batch about 4,200 / s. Target: idsp at least the log_batch rate, nothing lost."
    )


if __name__ == "__main__":
    main()
