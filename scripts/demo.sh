#!/usr/bin/env bash
# The main job: sets up ./.venv on first use, then runs the surround depth demo on the shipped
# model and data (bag in, node over loopback-only DDS, outputs recorded, contact sheet written).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
exec .venv/bin/fsmde-demo "$@"
