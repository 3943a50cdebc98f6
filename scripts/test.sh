#!/usr/bin/env bash
# The whole test suite: lint, types, unit tests, real-kernel and end-to-end tests.
# Real-kernel tests need root (CI runs as root); without root they are skipped and said so.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo ">> ruff"
.venv/bin/ruff check src tests bench
echo ">> mypy"
.venv/bin/mypy
echo ">> import layers"
.venv/bin/lint-imports --no-cache
echo ">> pytest"
set +e
.venv/bin/python -m pytest -n 2 --dist loadgroup -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$rc"
