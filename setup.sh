#!/usr/bin/env bash
# Install everything into .venv at the repository root (reruns only add what is missing),
# then run the given command, if any, with .venv's programs first on PATH:
#   ./setup.sh dvc repro          the pipeline
#   ./setup.sh test [ARGS]        also installs what the tests need, then runs python -m pytest ARGS
set -euo pipefail
cd "$(dirname "$0")"
[ -x .venv/bin/python ] || python3 -m venv .venv
pip_install() {
  if ! .venv/bin/python -m pip install -q "$@" > .venv/pip.log 2>&1; then
    cat .venv/pip.log >&2
    echo "error: installing into .venv failed (log above)" >&2
    exit 1
  fi
}
pip_install -r requirements.txt -e .
if [ "${1:-}" = test ]; then
  shift
  # the peer SNN libraries the meter is tested against (requirements-peers.txt); neurobench without its data-set
  # deps, nir and nirtorch newer than sinabs declares (both: --no-deps, after the rest)
  pip_install -r <(grep -v -E '^(neurobench|nir|nirtorch)==' requirements-peers.txt)
  pip_install --no-deps $(grep -E '^(neurobench|nir|nirtorch)==' requirements-peers.txt)
  # plots/node_modules: the pinned Vega packages plots/offline.html is generated from (tests/test_plots_browser.py
  # checks the committed page regenerates from them); reinstalled when plots/package-lock.json changes.
  if command -v npm > /dev/null && ! cmp -s plots/package-lock.json plots/node_modules/.installed-lock.json; then
    if ! npm ci --prefix plots --ignore-scripts --no-audit --no-fund > .venv/npm.log 2>&1; then
      cat .venv/npm.log >&2
      echo "error: npm ci --prefix plots failed (log above)" >&2
      exit 1
    fi
    cp plots/package-lock.json plots/node_modules/.installed-lock.json
  fi
  # Chromium: tests/test_plots_browser.py renders the dvc plots pages in it (skipped, saying why, without it).
  if ! command -v chromium > /dev/null && [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    { apt-get update -qq && apt-get install -y -qq chromium; } > .venv/apt.log 2>&1 \
      || echo "warning: apt-get install chromium failed (.venv/apt.log); the browser tests will skip" >&2
  fi
  set -- python -m pytest "$@"
fi
[ $# -eq 0 ] || PATH="$PWD/.venv/bin:$PATH" exec "$@"
