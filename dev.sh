#!/usr/bin/env bash
# The two commands of the README, on a fresh machine with only Python 3.11:
#   ./dev.sh sandbox [serve options]   set up .venv, then run `gengate serve --sandbox` (SQLite + local files)
#   ./dev.sh test [pytest options]     set up .venv, then run the whole test suite
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
VENV=${GENGATE_VENV:-.venv}
stamp="$VENV/.installed"
if [ ! -x "$VENV/bin/python" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
  echo "dev.sh: setting up $VENV with $PY" >&2
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
  touch "$stamp"
fi
cmd=${1:-}
shift || true
case "$cmd" in
  sandbox) exec "$VENV/bin/gengate" serve --sandbox "$@" ;;
  # End-to-end tests mostly wait on their servers: GENGATE_TEST_WORKERS pytest workers (one module each)
  test) exec "$VENV/bin/python" -m pytest -n "${GENGATE_TEST_WORKERS:-4}" --dist loadscope "$@" ;;
  *) echo "usage: ./dev.sh sandbox [serve options] | ./dev.sh test [pytest options]" >&2; exit 2 ;;
esac
