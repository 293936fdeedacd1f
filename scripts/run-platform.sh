#!/usr/bin/env bash
# Sets up IDSP, then runs the platform on its embedded defaults: the health check
# (`idsp doctor`) and the MLflow tracking server (SQLite + local artefact folder).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
idsp doctor || true
exec idsp tracking serve
