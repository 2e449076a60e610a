#!/usr/bin/env bash
# Create (or update) the project's virtualenv in .venv and install k8stars into it.
# Usage: source scripts/venv.sh [extra]   (extra: "test" installs the test tools too)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  for candidate in python3.13 python3.12 python3.11 python3.10 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      python="$candidate"; break
    fi
  done
fi
if [ -z "$python" ]; then
  echo "k8stars needs Python >= 3.10 with the venv module (Debian: apt-get install python3-venv)" >&2
  exit 1
fi
if [ ! -x "$root/.venv/bin/python" ]; then
  "$python" -m venv "$root/.venv"
fi
stamp="$root/.venv/.k8stars-installed-${1:-run}"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ] || [ "$root/setup.py" -nt "$stamp" ]; then
  "$root/.venv/bin/python" -m pip install -q --upgrade pip
  if [ "${1:-}" = "test" ]; then
    "$root/.venv/bin/python" -m pip install -q -e "$root[test]"
  else
    "$root/.venv/bin/python" -m pip install -q -e "$root"
  fi
  touch "$stamp"
fi
