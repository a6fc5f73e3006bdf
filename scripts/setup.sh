#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv.
#   scripts/setup.sh          runtime dependencies
#   scripts/setup.sh test     plus the test and lint tools
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
if [ "${1:-}" = "test" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
else
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
fi
