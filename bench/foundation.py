"""Benchmarks of the foundation issue, measured side by side in one run.

(a) start-up: `idsp --help` against `import great_expectations` and `import mlflow`;
(b) pseudonymisation of N synthetic BSNs (all distinct; and N rows of N/10 distinct)
    by idsp.privacy.pseudonymise against a naive per-value hmac loop and Series.map;
(c) idsp.privacy.scan on 1 M rows by 10 columns.

Run: .venv/bin/python bench/foundation.py [--rows 10000000] [--scan-rows 1000000]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))

from idsp import privacy  # noqa: E402
from idsp.keys import DomainKey, key_id_for  # noqa: E402

console = Console()
WEIGHTS = np.array([9, 8, 7, 6, 5, 4, 3, 2], dtype=np.int64)


def synthetic_bsns(n: int, rng: np.random.Generator) -> np.ndarray:
    """n generated elfproef-valid 9-digit numbers (distinct where n allows)."""
    out: list[np.ndarray] = []
    have = 0
    while have < n:
        first = rng.integers(0, 10**8, size=int((n - have) * 1.15) + 1000)
        digits = (first[:, None] // 10 ** np.arange(7, -1, -1)) % 10
        check = (digits @ WEIGHTS) % 11
        keep = check <= 9
        numbers = first[keep] * 10 + check[keep]
        numbers = numbers[numbers > 0]
        out.append(numbers)
        have += len(numbers)
    numbers = np.unique(np.concatenate(out))
    rng.shuffle(numbers)
    return np.char.zfill(numbers[:n].astype(str), 9).astype(object)


def wall(fn, repeat: int = 1) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_startup(repeat: int) -> list[dict]:
    python = sys.executable
    idsp = str(Path(python).with_name("idsp"))
    commands = {
        "idsp --help": [idsp, "--help"],
        'python -c "import great_expectations"': [python, "-c", "import great_expectations"],
        'python -c "import mlflow"': [python, "-c", "import mlflow"],
    }
    rows = []
    for name, cmd in commands.items():
        seconds = wall(lambda cmd=cmd: subprocess.run(cmd, capture_output=True, check=True), repeat)
        rows.append({"what": name, "seconds": seconds})
    return rows


def bench_pseudonymise(n: int, distinct: int, key: DomainKey, rng) -> list[dict]:
    pool = synthetic_bsns(distinct, rng)
    values = pool if distinct == n else pool[rng.integers(0, distinct, size=n)]
    series = pd.Series(values.tolist())  # pandas infers its default string dtype, as read_table gives
    secret = key.secret

    def naive():
        return [hmac.new(secret, v.encode(), hashlib.sha256).hexdigest() for v in values]

    def mapped():
        return series.map(lambda v: hmac.new(secret, v.encode(), hashlib.sha256).hexdigest())

    frame = pd.DataFrame({"bsn": series})

    def idsp():
        result = privacy.pseudonymise(frame, {"bsn": "bsn"}, key.domain, key=key)
        assert not result.report.invalid
        return result

    # correctness first: the same pseudonym as the textbook HMAC
    check = privacy.pseudonymise(frame.head(1000), {"bsn": "bsn"}, key.domain, key=key).frame["bsn"]
    assert check.tolist() == [hmac.new(secret, v.encode(), hashlib.sha256).hexdigest() for v in values[:1000]]
    rows = []
    for name, fn in (("naive hmac.new loop", naive), ("Series.map", mapped), ("idsp.privacy.pseudonymise", idsp)):
        seconds = wall(fn)
        rows.append({"what": name, "rows": n, "distinct": distinct, "seconds": seconds,
                     "values_per_second": n / seconds})
        console.print(f"  {name}: {n / seconds / 1e6:.2f} M values/s ({seconds:.1f} s)")
    return rows


def bench_scan(n: int, rng) -> dict:
    bsn = synthetic_bsns(n, rng)
    frame = pd.DataFrame(
        {
            "bsn": bsn,
            "kvk": np.char.zfill(rng.integers(1, 10**8, n).astype(str), 8).astype(object),
            "email": [f"persoon{i % 50000}@voorbeeld.nl" for i in range(n)],
            "telefoon": [f"06{i % 100000000:08d}" for i in range(n)],
            "postcode": [f"{1000 + i % 9000} AB" for i in range(n)],
            "bedrag": rng.normal(1000, 200, n),
            "aantal": rng.integers(0, 100, n),
            "categorie": rng.choice(["speelgoed", "elektra", "machines"], n),
            "datum": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
            "opmerking": rng.choice(["geen bijzonderheden", "bel terug 0612345678 graag", "ok"], n),
        }
    )
    seconds = wall(lambda: privacy.scan(frame))
    kinds = sorted({(f.column, f.kind) for f in privacy.scan(frame.head(10000))})
    return {"rows": n, "columns": frame.shape[1], "seconds": seconds, "rows_per_second": n / seconds,
            "found_in_sample": [f"{c}:{k}" for c, k in kinds]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--scan-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="start-up repeats (median)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "foundation.json")
    args = parser.parse_args()
    rng = np.random.default_rng(20261128)
    secret = os.urandom(32)
    key = DomainKey("bench", key_id_for("bench", secret), "", secret)
    console.print(f"[bold]IDSP foundation benchmarks[/] ({os.cpu_count()} cores)")

    console.print("(a) start-up ...")
    startup = bench_startup(args.repeat)
    console.print(f"(b) pseudonymise {args.rows:,} distinct ...")
    distinct = bench_pseudonymise(args.rows, args.rows, key, rng)
    console.print(f"(b) pseudonymise {args.rows:,} rows, {args.rows // 10:,} distinct ...")
    repeated = bench_pseudonymise(args.rows, args.rows // 10, key, rng)
    console.print(f"(c) scan {args.scan_rows:,} rows x 10 columns ...")
    scan = bench_scan(args.scan_rows, rng)

    table = Table(title="(a) start-up, median wall time with imports")
    table.add_column("command")
    table.add_column("seconds", justify="right")
    table.add_column("vs idsp --help", justify="right")
    base = startup[0]["seconds"]
    for row in startup:
        table.add_row(row["what"], f"{row['seconds']:.2f}", f"{row['seconds'] / base:.1f}x")
    console.print(table)

    for title, rows, target in (
        ("(b) pseudonymise, every identifier distinct", distinct, 2.0),
        ("(b) pseudonymise, identifiers repeat (10 % distinct)", repeated, 10.0),
    ):
        table = Table(title=title)
        for col in ("method", "rows", "distinct", "M values/s", "vs naive"):
            table.add_column(col, justify="right" if col != "method" else "left")
        naive = rows[0]["values_per_second"]
        for row in rows:
            table.add_row(row["what"], f"{row['rows']:,}", f"{row['distinct']:,}",
                          f"{row['values_per_second'] / 1e6:.2f}", f"{row['values_per_second'] / naive:.1f}x")
        console.print(table)
        ratio = rows[-1]["values_per_second"] / naive
        verdict = "[green]met[/]" if ratio >= target else "[red]NOT met[/]"
        console.print(f"  target: at least {target:.0f}x the naive loop -> {ratio:.1f}x, {verdict}")

    console.print(
        f"(c) scan: {scan['rows']:,} rows x {scan['columns']} columns in {scan['seconds']:.2f} s "
        f"({scan['rows_per_second'] / 1e6:.2f} M rows/s); found: {', '.join(scan['found_in_sample'])}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"startup": startup, "distinct": distinct, "repeated": repeated, "scan": scan},
                                   indent=2))
    console.print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
