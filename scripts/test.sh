#!/usr/bin/env bash
# The whole test suite: lint, types, unit tests, real-kernel and end-to-end tests.
# Real-kernel tests need root (CI runs as root): run as another user, it runs itself again through sudo
# (PODNET_NO_SUDO=1 runs it unprivileged instead: the real-kernel tests are then skipped and said so).
set -euo pipefail
if [ "${PODNET_NO_SUDO:-}" != 1 ]; then
  . "$(dirname "$0")/as-root.sh"
fi
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
