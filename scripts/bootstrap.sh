#!/usr/bin/env bash
# Creates ./.venv (Python >= 3.10) and installs fsmde_ros with its runtime, ROS 2 wheel, training
# and dev extras. Re-runs only when setup.py changed. Sourced by scripts/demo.sh and scripts/test.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"

if ! command -v "$PY" >/dev/null; then
  echo "bootstrap: $PY not found; install Python 3.10 or newer" >&2; exit 1
fi
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
  echo "bootstrap: $("$PY" --version) is too old; fsmde_ros needs Python 3.10 or newer" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      ver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      apt-get update -qq && apt-get install -y -qq "python${ver}-venv" || apt-get install -y -qq python3-venv
      "$PY" -m venv "$VENV"
    else
      echo "bootstrap: '$PY -m venv' failed; install the python3-venv package" >&2; exit 1
    fi
  fi
fi

stamp="$VENV/.fsmde-installed"
want="$(cat "$ROOT/setup.py" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log="$VENV/install.log"
  echo "bootstrap: installing fsmde_ros and its dependencies into $VENV (log: $log)"
  if ! { "$VENV/bin/python" -m pip install --upgrade pip \
         && "$VENV/bin/python" -m pip install -e "$ROOT[ros,train,dev]"; } >"$log" 2>&1; then
    tail -n 30 "$log" >&2; echo "bootstrap: pip install failed (full log: $log)" >&2; exit 1
  fi
  echo "$want" > "$stamp"
fi
