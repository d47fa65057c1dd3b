#!/usr/bin/env bash
# Install everything into .venv at the repository root (reruns only add what is missing), and, as root where
# apt-get is, the Debian packages named below; then run the given command, if any, with .venv's programs first
# on PATH:
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
apt_install() {  # apt_install PACKAGE WHAT-HAPPENS-WITHOUT-IT: quietly, as root where apt-get is; a warning if it fails
  [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null || return 0
  { apt-get update -qq && apt-get install -y -qq "$1"; } > ".venv/apt-$1.log" 2>&1 \
    || echo "warning: apt-get install $1 failed (.venv/apt-$1.log); $2" >&2
}
pip_install -r requirements.txt -e .
# Fashion-MNIST's four original IDX files, read there by pipeline/data.py (docs/fashion-mnist.md).
[ -d /usr/share/datasets/fashion-mnist ] \
  || apt_install dataset-fashion-mnist "Fashion-MNIST runs need its files in data/FashionMNIST/raw/ or a network"
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
  command -v chromium > /dev/null || apt_install chromium "the browser tests will skip"
  set -- python -m pytest "$@"
fi
[ $# -eq 0 ] || PATH="$PWD/.venv/bin:$PATH" exec "$@"
