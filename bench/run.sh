#!/usr/bin/env bash
# All IDSP benchmarks, one command: bash bench/run.sh [--quick] [--hub]
# Each prints its own side-by-side comparison with the baseline named in its issue.
#   --quick  smaller sizes, one repeat
#   --hub    also the hub benchmark (starts a real hub with OS accounts: root only)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
quick=""; hub=""
for arg in "$@"; do
  case "$arg" in
    --quick) quick="--quick" ;;
    --hub) hub=1 ;;
    *) echo "unknown option $arg (use --quick, --hub)" >&2; exit 2 ;;
  esac
done
if [ -n "$quick" ]; then
  $PY bench/foundation.py --rows 1000000 --scan-rows 200000 --repeat 1
else
  $PY bench/foundation.py
fi
$PY bench/quality.py $quick
$PY bench/tracking.py $quick
$PY bench/ce_markering.py $quick
$PY bench/bench_start_page.py $quick
if [ -n "$hub" ]; then $PY bench/hub_bench.py; $PY bench/bench_case_make.py; $PY bench/bench_runner.py; fi
