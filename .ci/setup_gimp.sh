#!/usr/bin/env bash
# Make GIMP 3 available for the real-host tests (tests/test_gimp_host.py).
#
#   .ci/setup_gimp.sh [--with-xvfb]
#
# Debian 13 (trixie) or newer, testing and unstable included: installs the `gimp` package on
#   this machine (GIMP 3.0 on trixie, 3.2 on forky).
# Debian 12 (bookworm): GIMP 3 is not packaged, so this builds a trixie root with debootstrap in
#   $RELIGHT_GIMP_ROOT (default /var/cache/relight-ci/trixie-root) and installs GIMP there.
#   A root that is already complete (marker file .relight-gimp-ready) is reused as is.
#   The tests run GIMP in that root through tests/gimp/run_in_root.sh.
# --with-xvfb also installs xvfb + imagemagick (only needed to take the docs screenshots).
#
# Prints, as its last line, either `gimp: host` or `gimp: root <dir>`.
set -euo pipefail

WITH_XVFB=0
for arg in "$@"; do
  case "$arg" in
    --with-xvfb) WITH_XVFB=1 ;;
    *) echo "usage: $0 [--with-xvfb]" >&2; exit 2 ;;
  esac
done

export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
GIMP_PACKAGES=(gimp python3-gi gir1.2-gimp-3.0 python3)
EXTRA_PACKAGES=()
if [ "$WITH_XVFB" = 1 ]; then EXTRA_PACKAGES=(xvfb xauth imagemagick xdotool); fi

. /etc/os-release
version_id="${VERSION_ID:-}"
major="${version_id%%.*}"
# Debian testing and unstable have no VERSION_ID: newer than the last release (GIMP 3.2 there)
if [ "${ID:-}" = debian ] && [ -z "$version_id" ]; then major=99; fi

if [ "${ID:-}" = debian ] && [ "${major:-0}" -ge 13 ]; then
  if ! command -v gimp-console-3 >/dev/null || [ "${#EXTRA_PACKAGES[@]}" -gt 0 ]; then
    apt-get update -q
    apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${GIMP_PACKAGES[@]}" "${EXTRA_PACKAGES[@]}"
  fi
  echo "gimp: host"
  exit 0
fi

R="${RELIGHT_GIMP_ROOT:-/var/cache/relight-ci/trixie-root}"
READY="$R/.relight-gimp-ready"

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/chroot.sh"
unmount_root() { chroot_unmount "$R"; }

root_apt_install() {
  chroot_mount "$R"
  chroot "$R" apt-get update -q
  chroot "$R" apt-get install -y -q --no-install-recommends "$@"
  unmount_root
}

if [ -f "$READY" ]; then
  if [ "${#EXTRA_PACKAGES[@]}" -gt 0 ] \
     && ! chroot "$R" dpkg -s "${EXTRA_PACKAGES[@]}" >/dev/null 2>&1; then
    trap unmount_root EXIT
    root_apt_install "${EXTRA_PACKAGES[@]}"
  fi
  echo "gimp: root $R"
  exit 0
fi

command -v debootstrap >/dev/null || { apt-get update -q; apt-get -o DPkg::Lock::Timeout=900 install -y -q debootstrap; }

trap unmount_root EXIT
if [ -d "$R" ]; then
  # An unfinished root from an interrupted run: never delete through live bind mounts.
  unmount_root
  if chroot_mounted "$R"; then echo "setup_gimp: $R still has mounts; not removing it" >&2; exit 1; fi
  rm -rf --one-file-system "$R"
fi
mkdir -p "$(dirname "$R")"
debootstrap --variant=minbase --include=ca-certificates trixie "$R" http://deb.debian.org/debian
chroot_no_daemons "$R"
chroot_trust_host_cas "$R"
root_apt_install "${GIMP_PACKAGES[@]}" "${EXTRA_PACKAGES[@]}"
chroot "$R" apt-get clean
chroot "$R" gimp-console-3 --version
touch "$READY"
echo "gimp: root $R"
