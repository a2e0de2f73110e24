#!/bin/sh
# Install the real Krita (with its Python plug-in support), Xvfb and ImageMagick for the
# real-host tests. Idempotent: returns at once when everything is already there.
# Recommends must stay on: python3-pyqt5 / python3-sip (needed by pykrita) are only Recommends.
set -eu
need=""
command -v krita >/dev/null 2>&1 || need="$need krita"
command -v xvfb-run >/dev/null 2>&1 || need="$need xvfb"
command -v xauth >/dev/null 2>&1 || need="$need xauth"
command -v import >/dev/null 2>&1 || need="$need imagemagick"
dpkg -s python3-pyqt5 >/dev/null 2>&1 || need="$need python3-pyqt5"
for lib in libegl1 libfontconfig1 libxkbcommon0 libdbus-1-3; do
    dpkg -s "$lib" >/dev/null 2>&1 || need="$need $lib"
done
if [ -z "$need" ]; then
    echo "setup_krita: already installed"
    exit 0
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# libegl1 … libdbus-1-3: what the PyQt6 wheel (tests/test_krita_qt6.py) needs offscreen
$SUDO apt-get install -y -q krita xvfb xauth imagemagick libegl1 libfontconfig1 libxkbcommon0 libdbus-1-3
echo "setup_krita: installed:$need"
