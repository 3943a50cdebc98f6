#!/usr/bin/env bash
# Set everything up and run podnet's main job: a 3-node cluster with the example app, traffic flowing.
# Needs root (network namespaces, nftables): run as another user, it runs itself again through sudo.
# Clean up afterwards with: .venv/bin/podnet down --name demo
set -euo pipefail
. "$(dirname "$0")/as-root.sh"
cd "$(dirname "$0")/.."
./scripts/setup.sh
# The example runs images podnet has built in; with PODNET_IMAGES=auto (or real) it would pull them instead.
export PODNET_IMAGES="${PODNET_IMAGES:-builtin}"
exec .venv/bin/podnet demo "$@"
