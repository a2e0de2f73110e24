#!/usr/bin/env bash
# Take docs/gimp-dialog.png and docs/gimp-layers.png from GIMP 3's GUI under Xvfb.
#
#   tests/gimp/screenshots.sh            (as root on Debian 12, after .ci/setup_gimp.sh --with-xvfb;
#                                         on Debian 13 with gimp, xvfb, imagemagick installed)
# Uses the repo's venv as the worker (the models must be installed).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"

if [ "${1:-}" = --inside ]; then
  # ---- inside the root (or on a Debian 13 host): one GUI session, two screenshots
  W="$2"
  export DISPLAY=:77
  Xvfb :77 -screen 0 1360x860x24 -nolisten tcp >/dev/null 2>&1 &
  xvfb=$!
  trap 'kill $xvfb 2>/dev/null || true' EXIT
  sleep 2
  shoot() {  # NAME: full screen, 128 colours (the docs want small files)
    import -window root -colors 128 "PNG8:$W/shots/$1.png"
  }
  timeout -k 5 240 gimp-3 -n --no-splash --batch-interpreter=python-fu-eval \
    -b "exec(open('$REPO/tests/gimp/screenshot_driver.py').read())" >"$W/gimp-gui.log" 2>&1 &
  gimp=$!
  for _ in $(seq 600); do [ -e "$W/shots/layers.ready" ] && break; sleep 0.2; done
  # No window manager under Xvfb: make GIMP's window fill the screen so the Layers dock is tall.
  for win in $(xdotool search --onlyvisible --class gimp 2>/dev/null); do
    xdotool windowmove "$win" 0 0 windowsize "$win" 1360 860 2>/dev/null || true
  done
  sleep 5; shoot layers; touch "$W/shots/layers.done"
  for _ in $(seq 300); do [ -e "$W/shots/dialog.ready" ] && break; sleep 0.2; done
  sleep 8; shoot dialog
  kill "$gimp" 2>/dev/null || true
  wait "$gimp" 2>/dev/null || true
  exit 0
fi

R="${RELIGHT_GIMP_ROOT:-/var/cache/relight-ci/trixie-root}"
PY="$REPO/.venv/bin/python"
MODELS="$("$PY" -c 'from relight_core.models import models_dir; print(models_dir())')"
BASE="$("$PY" -c 'import sys; print(sys.base_prefix)')"
DATA="$(cd "$REPO/.." && pwd)/shared/data"
W="$(mktemp -d /tmp/relight-shots.XXXXXX)"
mkdir -p "$W/profile/plug-ins/relight" "$W/home" "$W/shots"
install -m 755 "$REPO/plugin_gimp/relight/relight.py" "$W/profile/plug-ins/relight/relight.py"
cp "$REPO/relight_core/client.py" "$W/profile/plug-ins/relight/relight_client.py"
cp "$REPO/tests/gimp/sessionrc" "$W/profile/sessionrc"  # big window, wide Layers dock
printf '{"python": "%s", "models_dir": "%s", "version": "0.1.0", "protocol": 1}\n' \
  "$PY" "$MODELS" >"$W/config.json"
printf '{"portrait": "%s", "background": "%s"}\n' \
  "$DATA/portraits/05_woman_long_wavy_hair_window_light_cc0.png" \
  "$DATA/backgrounds/kiara_dawn.png" >"$W/job.json"
envs=(HOME="$W/home" GIMP3_DIRECTORY="$W/profile" RELIGHT_CONFIG="$W/config.json"
      RELIGHT_GIMP_JOB="$W/job.json" RELIGHT_SHOT_DIR="$W/shots" OMP_NUM_THREADS=2)
if command -v gimp-3 >/dev/null; then
  env "${envs[@]}" "$0" --inside "$W"
else
  args=()
  for e in "${envs[@]}"; do args+=(--env "$e"); done
  "$REPO/tests/gimp/run_in_root.sh" "$R" --bind "$W" --bind "$REPO" --bind-ro "$BASE" \
    --bind-ro "$MODELS" --bind-ro "$DATA" "${args[@]}" -- bash "$REPO/tests/gimp/screenshots.sh" \
    --inside "$W"
fi
cp "$W/shots/dialog.png" "$REPO/docs/gimp-dialog.png"
cp "$W/shots/layers.png" "$REPO/docs/gimp-layers.png"
ls -la "$REPO/docs/gimp-dialog.png" "$REPO/docs/gimp-layers.png"
echo "log: $W/gimp-gui.log"
