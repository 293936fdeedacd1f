#!/usr/bin/env bash
# Sets up everything IDSP needs on a fresh Debian machine with Python 3.11 and Node.js:
# Debian packages, the Python environment (.venv, from the lock file) and the npm packages.
# Safe to run again: each step skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(git postgresql chromium acl)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $PY"
  "$PY" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check "uv==0.13.9"
fi
echo "==> installing Python packages from requirements.lock"
.venv/bin/uv pip sync -q --compile-bytecode --python .venv/bin/python requirements.lock
.venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .

if [ -f package.json ]; then
  echo "==> installing npm packages from package-lock.json"
  npm ci --silent --no-audit --no-fund
fi
echo "==> set-up done"
