#!/usr/bin/env bash
# Rehearse CI on another Debian release, in a chroot on this machine (as root):
#
#   .ci/rehearse.sh SUITE        e.g. trixie (GIMP 3.0, Krita 5.2, Python 3.13)
#                                     forky  (Debian testing: GIMP 3.2, Krita 5.3, Python 3.14)
#
# Builds a minimal root of SUITE once (debootstrap, kept in /var/tmp/relight-rehearse/SUITE-base,
# ~0.3 GB), copies it for the run, clones this checkout's HEAD into it at /work/main with
# ../shared bind-mounted at /work/shared (as on a CI machine), and runs .ci/run there: the same
# apt installs, venv, models and tests as on a fresh machine of that release. The run's copy is
# kept for inspection until the next rehearsal of the same suite. Prints .ci/run's output.
set -euo pipefail
SUITE="${1:?usage: .ci/rehearse.sh SUITE (e.g. trixie, forky)}"
[ "$(id -u)" = 0 ] || { echo "rehearse: needs root (debootstrap, chroot, mounts)" >&2; exit 1; }
REPO="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="$(cd "$REPO/../shared" && pwd)"
TOP=/var/tmp/relight-rehearse
BASE="$TOP/$SUITE-base"
RUN="$TOP/$SUITE-run"

unmount_under() {  # deepest first; lazily as a last resort so a busy mount never blocks
  findmnt -rn -o TARGET | grep "^$1/" | sort -r | while read -r target; do
    umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null || true
  done || true  # (grep finds nothing when nothing is mounted)
}

if [ ! -f "$BASE/.relight-base-ready" ]; then
  command -v debootstrap >/dev/null || { apt-get update -q; apt-get install -y -q debootstrap; }
  unmount_under "$BASE"
  rm -rf --one-file-system "$BASE"
  mkdir -p "$TOP"
  # debootstrap names only released suites; testing's codename uses unstable's script
  script=()
  [ -e "/usr/share/debootstrap/scripts/$SUITE" ] || script=(/usr/share/debootstrap/scripts/sid)
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$BASE" \
    http://deb.debian.org/debian "${script[@]}"
  printf '#!/bin/sh\nexit 101\n' >"$BASE/usr/sbin/policy-rc.d"; chmod +x "$BASE/usr/sbin/policy-rc.d"
  # A mirror behind a caching proxy may serve testing's Release after its Valid-Until date.
  echo 'Acquire::Check-Valid-Until "false";' >"$BASE/etc/apt/apt.conf.d/99relight-rehearsal"
  touch "$BASE/.relight-base-ready"
fi

unmount_under "$RUN"
rm -rf --one-file-system "$RUN"
cp -a "$BASE" "$RUN"
trap 'unmount_under "$RUN"' EXIT
# The host's extra CAs (a TLS-intercepting proxy may sit in front of the registries).
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$RUN/usr/local/share/ca-certificates/"
  chroot "$RUN" update-ca-certificates >/dev/null 2>&1 || true
fi
cp /etc/resolv.conf "$RUN/etc/resolv.conf" 2>/dev/null || true
mkdir -p "$RUN/work/shared"
git clone -q "$REPO" "$RUN/work/main"
mount --bind "$SHARED" "$RUN/work/shared"
mount -t proc proc "$RUN/proc"
mount -t sysfs -o ro sysfs "$RUN/sys"
mount --rbind /dev "$RUN/dev"; mount --make-rslave "$RUN/dev"
mount -t tmpfs tmpfs "$RUN/tmp"
chroot "$RUN" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root CI=true \
  /bin/bash -c 'cd /work/main && echo "rehearsal on Debian $(cat /etc/debian_version)" && bash .ci/run'
