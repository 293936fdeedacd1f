#!/usr/bin/env bash
# Sets up IDSP (scripts/setup.sh), starts the services the tests need (a throw-away
# PostgreSQL cluster), then runs ruff, mypy ([tool.mypy] in pyproject.toml) and the whole test suite, slow tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PWD/node_modules/.bin:$PATH"

source scripts/postgres.sh
trap postgres_stop EXIT
postgres_start

echo "==> ruff"
ruff check .
echo "==> mypy"
mypy
echo "==> pytest"
python -m pytest "$@"
