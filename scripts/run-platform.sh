#!/usr/bin/env bash
# Sets up IDSP, then runs the platform on its embedded defaults: the health check
# (`idsp doctor`), then the multi-user hub (`idsp hub up`: JupyterHub + proxy, admin-approved
# accounts, MLflow tracking with SQLite + a local artefact folder as a hub service). It prints
# the URL and the file that holds the first admin's password. Needs root (one OS account per
# hub user). Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
idsp doctor || true
exec idsp hub up "$@"
