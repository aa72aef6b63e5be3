# Shared by scripts/run and scripts/test: a virtualenv with the project's requirements.
# Sourced, not run. Reinstalls only when a requirements file changed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python3}"
REQUIREMENTS="${1:-requirements.txt}"

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "reviewapp needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)." >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "==> Creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=".venv/.installed-$(basename "$REQUIREMENTS")"
if [ ! -f "$stamp" ] || [ requirements.txt -nt "$stamp" ] || [ "$REQUIREMENTS" -nt "$stamp" ]; then
  echo "==> Installing $REQUIREMENTS"
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r "$REQUIREMENTS"
  touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
