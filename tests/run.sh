#!/usr/bin/env bash
# The project's test command (README, .ci/run): a dev venv in .venv with the test extras, the
# pretrained models converted into the user's model store (skipped when already verified), the
# matting JIT cache warmed, then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# A venv whose creation failed half-way has a python but no pip: make it again.
if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  echo "[tests] creating .venv"
  rm -rf .venv
  "$PY" -m venv .venv
fi
echo "[tests] installing the project with its test extras"
status=0
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' >.venv/pip-install.log 2>&1 \
  || status=$?
grep -v -E '^WARNING: Location' .venv/pip-install.log || true
[ "$status" = 0 ] || { echo "[tests] installing the project failed (pip exit $status, above)"; exit 1; }
.venv/bin/python -m pip check >/dev/null || { .venv/bin/python -m pip check; exit 1; }
echo "[tests] models"
.venv/bin/relight models verify >/dev/null 2>&1 || .venv/bin/relight models install
echo "[tests] warming the matting JIT cache"
.venv/bin/python -c 'from relight_core import matting; matting.warm_up()'
echo "[tests] pytest"
exec .venv/bin/python -m pytest -ra "$@"
