#!/usr/bin/env bash
# All IDSP benchmarks, one command: bash bench/run.sh [--quick]
# Each prints its own side-by-side comparison with the baseline named in its issue.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ "${1:-}" = "--quick" ]; then
  $PY bench/foundation.py --rows 1000000 --scan-rows 200000 --repeat 1
else
  $PY bench/foundation.py
fi
for extra in bench/quality.py bench/tracking.py; do
  if [ -f "$extra" ]; then $PY "$extra" ${1:+"$1"}; fi
done
