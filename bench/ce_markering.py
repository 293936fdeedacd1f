"""Benchmark of the CE-marking kit: synthetic generation speed (issue 6: 1 M rows in well under a minute).

Measures ``casuistiek.ce_markering.generate`` for N rows (all 52 columns, fictional
operators, selection process and labels), and writing the result as Parquet, each the
median of ``--repeat`` runs in this process (imports excluded); prints rows/s and the
machine's load, and writes bench/results/ce_markering.json.

Run: .venv/bin/python bench/ce_markering.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]

import pandas  # noqa: E402,F401  (imports are not part of the measurement)
from idsp.data import write_table  # noqa: E402

from casuistiek.ce_markering.generate import generate  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one repeat")
    args = parser.parse_args()
    repeat = 1 if args.quick else args.repeat
    generate({"rows": 5000})  # warm-up: first-call costs of numpy/pandas/pyarrow paths
    gen_times, write_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat):
            t = time.perf_counter()
            frame = generate({"rows": args.rows, "seed": 20260101 + i})
            gen_times.append(time.perf_counter() - t)
            t = time.perf_counter()
            write_table(frame, Path(tmp) / "ce_cases.parquet")
            write_times.append(time.perf_counter() - t)
            size = (Path(tmp) / "ce_cases.parquet").stat().st_size
    gen, wr = statistics.median(gen_times), statistics.median(write_times)
    result = {
        "rows": args.rows, "columns": frame.shape[1], "repeat": repeat,
        "generate_seconds": round(gen, 3), "generate_rows_per_second": round(args.rows / gen),
        "write_parquet_seconds": round(wr, 3), "parquet_mb": round(size / 1e6, 1),
        "total_rows_per_second": round(args.rows / (gen + wr)),
        "cpus": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
    }  # fmt: skip
    print(f"ce_markering.generate: {args.rows:,} rows x {frame.shape[1]} columns in {gen:.2f} s "
          f"= {result['generate_rows_per_second']:,} rows/s; Parquet write {wr:.2f} s ({result['parquet_mb']} MB); "
          f"generate+write {result['total_rows_per_second']:,} rows/s "
          f"(median of {repeat}; {result['cpus']} CPUs, load {result['load_average_1m']})")  # fmt: skip
    out = ROOT / "bench" / "results" / "ce_markering.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
