#!/usr/bin/env bash
# Install everything into .venv at the repository root (reruns only add what is missing),
# then run the given command, if any, with .venv's programs first on PATH:
#   ./setup.sh dvc repro          ./setup.sh python -m pytest
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
if ! .venv/bin/python -m pip install -q -r requirements.txt -e . > .venv/pip.log 2>&1; then
  cat .venv/pip.log >&2
  echo "error: installing into .venv failed (log above)" >&2
  exit 1
fi
[ $# -eq 0 ] || PATH="$PWD/.venv/bin:$PATH" exec "$@"
