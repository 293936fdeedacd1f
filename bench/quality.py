"""Benchmark (issue 5a): idsp.quality against raw Great Expectations and hand-written pandas.

Same synthetic table (10 columns), same 10 checks (not-null x3, between x2, in-set x2,
unique, regex, type), 1 M and 10 M rows. Every engine runs in a fresh Python process, so
the wall time includes its imports, as a notebook or `dvc repro` stage pays them. The
engines run in alternating rounds (order rotated each round) and the median per engine is
shown, so load from other work on the machine falls on all of them alike; the load average
is printed with the table.
Target: idsp adds at most 10 % to raw GX.

Run: .venv/bin/python bench/quality.py [--quick] [--rows 1000000 10000000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SUITE = {
    "name": "bench",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "zaak_id"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "datum"}},
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "bedrag"}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "bedrag", "min_value": 0, "max_value": 1_000_000}},
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "score", "min_value": 0, "max_value": 1}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "inspectie", "value_set": ["ILT", "NVWA", "NLA", "IGJ", "RDI"]}},
        {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "uitkomst", "value_set": [0, 1]}},
        {"type": "expect_column_values_to_be_unique", "kwargs": {"column": "zaak_id"}},
        {"type": "expect_column_values_to_match_regex", "kwargs": {"column": "postcode4", "regex": "^[1-9][0-9]{3}$"}},
        {"type": "expect_column_values_to_be_of_type", "kwargs": {"column": "aantal", "type_": "int64"}},
    ],
}  # fmt: skip


def make_data(rows: int, path: Path) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(5)
    frame = pd.DataFrame(
        {
            "zaak_id": np.arange(rows, dtype=np.int64),
            "datum": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 365, rows), unit="D"),
            "bedrag": rng.gamma(2.0, 500.0, rows).round(2),
            "score": rng.random(rows),
            "inspectie": rng.choice(["ILT", "NVWA", "NLA", "IGJ", "RDI"], rows),
            "uitkomst": rng.integers(0, 2, rows),
            "postcode4": rng.integers(1000, 10000, rows).astype(str),
            "aantal": rng.integers(0, 50, rows),
            "product": rng.choice(["speelgoed", "lader", "lamp", "kabel"], rows),
            "land": rng.choice(["NL", "BE", "DE", "CN"], rows),
        }
    )
    frame.to_parquet(path)


# -- the three engines, each run in its own process ------------------------------------------


def worker(engine: str, data: Path, work: Path, repeat: int) -> dict:
    t0 = time.perf_counter()
    import pandas as pd

    if engine == "pandas":
        pass
    elif engine == "gx":
        import great_expectations as gx
    else:
        sys.path.insert(0, str(ROOT / "platform"))
        import great_expectations  # noqa: F401 - idsp imports it lazily; counted with imports here
        from idsp import quality
    t_import = time.perf_counter()
    df = pd.read_parquet(data)
    t_read = time.perf_counter()

    state: dict = {}

    def once() -> bool:
        if engine == "pandas":
            allowed = {"ILT", "NVWA", "NLA", "IGJ", "RDI"}
            checks = [
                df["zaak_id"].notna().all(),
                df["datum"].notna().all(),
                df["bedrag"].notna().all(),
                df["bedrag"].between(0, 1_000_000).all(),
                df["score"].between(0, 1).all(),
                df["inspectie"].isin(allowed).all(),
                df["uitkomst"].isin([0, 1]).all(),
                df["zaak_id"].is_unique,
                df["postcode4"].str.fullmatch(r"[1-9][0-9]{3}").all(),
                str(df["aantal"].dtype) == "int64",
            ]
            return bool(all(checks))
        if engine == "gx":
            if "batch_def" not in state:  # one context per process, as idsp keeps one
                from great_expectations.data_context.types.base import ProgressBarsConfig

                context = gx.get_context(mode="ephemeral")
                context.variables.progress_bars = ProgressBarsConfig(globally=False)
                state["batch_def"] = (
                    context.data_sources.add_pandas("p").add_dataframe_asset("t").add_batch_definition_whole_dataframe("w")
                )
            suite = gx.ExpectationSuite(name="bench", expectations=[dict(e) for e in SUITE["expectations"]])
            batch = state["batch_def"].get_batch(batch_parameters={"dataframe": df})
            result = batch.validate(suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5})
            return bool(result.success)
        quality.save_suite(SUITE, gx_dir=work / "gx")
        result = quality.validate(df, "bench", gx_dir=work / "gx", output_dir=work / "out", fail_fast=False)
        return result.success

    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        success = once()
        times.append(time.perf_counter() - t)
    return {
        "engine": engine,
        "import_s": t_import - t0,
        "read_s": t_read - t_import,
        "first_s": times[0],
        "validate_s": sorted(times)[len(times) // 2],
        "success": success,
    }


def run_worker(engine: str, data: Path, work: Path, repeat: int) -> dict:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", engine, "--data", str(data), "--work", str(work), "--repeat", str(repeat)],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{engine} failed:\n{proc.stderr[-3000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = wall
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 k and 1 M rows instead of 1 M and 10 M")
    parser.add_argument("--rows", type=int, nargs="*")
    parser.add_argument("--repeat", type=int, default=3, help="validations per process (median shown)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per engine, alternating (median shown)")
    parser.add_argument("--worker")
    parser.add_argument("--data")
    parser.add_argument("--work")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, Path(args.data), Path(args.work), args.repeat)))
        return

    from rich.console import Console
    from rich.table import Table

    sizes = args.rows or ([100_000, 1_000_000] if args.quick else [1_000_000, 10_000_000])
    console = Console(width=150)
    table = Table(title=f"idsp.quality vs raw GX vs hand-written pandas (10 checks; fresh process each; validate = median of {args.repeat}; median of {args.rounds} rounds)")
    for col in ("rows", "engine", "import s", "read s", "1st validate s", "validate s", "process wall s", "validate vs GX", "wall vs GX", "passed"):
        table.add_column(col, justify="right")
    with tempfile.TemporaryDirectory(prefix="idsp-bench-quality-") as tmp:
        for rows in sizes:
            data = Path(tmp) / f"data-{rows}.parquet"
            make_data(rows, data)
            runs: dict[str, list[dict]] = {"pandas": [], "gx": [], "idsp": []}
            order = ["pandas", "gx", "idsp"]
            for round_no in range(args.rounds):
                for engine in order[round_no % 3 :] + order[: round_no % 3]:
                    runs[engine].append(run_worker(engine, data, Path(tmp) / engine, args.repeat))
                console.print(f"  {rows:,} rows: round {round_no + 1}/{args.rounds} done (load {os.getloadavg()[0]:.1f})")
            results = {e: {k: (statistics.median(r[k] for r in rs) if k != "success" else all(r[k] for r in rs))
                           for k in rs[0] if k != "engine"} for e, rs in runs.items()}
            gx_v, gx_w = results["gx"]["validate_s"], results["gx"]["wall_s"]
            for engine in ("pandas", "gx", "idsp"):
                r = results[engine]
                table.add_row(
                    f"{rows:,}",
                    {"pandas": "hand-written pandas", "gx": "raw GX 1.x", "idsp": "idsp.quality"}[engine],
                    f"{r['import_s']:.2f}",
                    f"{r['read_s']:.2f}",
                    f"{r['first_s']:.2f}",
                    f"{r['validate_s']:.2f}",
                    f"{r['wall_s']:.2f}",
                    f"{(r['validate_s'] / gx_v - 1) * 100:+.1f} %",
                    f"{(r['wall_s'] / gx_w - 1) * 100:+.1f} %",
                    str(r["success"]),
                )
            data.unlink()
    console.print(table)
    console.print(f"{args.rounds} rounds; load average at the end (1, 5, 15 min): "
                  + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    console.print(
        "Issue anchor (GX 1.24, 8 checks): 1 M rows 0.67 s GX vs 0.08 s pandas; 10 M rows 6.7 s vs 1.7 s; "
        "import GX 8-10 s. Target: idsp at most +10 % over raw GX."
    )


if __name__ == "__main__":
    main()
