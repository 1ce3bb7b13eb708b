#!/usr/bin/env bash
# The whole test suite: sets up ./.venv on first use, then lint and pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
.venv/bin/ruff check .
.venv/bin/python -m pytest "$@"
