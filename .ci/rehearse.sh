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

. "$REPO/.ci/chroot.sh"

if [ ! -f "$BASE/.relight-base-ready" ]; then
  command -v debootstrap >/dev/null || { apt-get update -q; apt-get install -y -q debootstrap; }
  chroot_unmount "$BASE"
  rm -rf --one-file-system "$BASE"
  mkdir -p "$TOP"
  # debootstrap names only released suites; testing's codename uses unstable's script
  script=()
  [ -e "/usr/share/debootstrap/scripts/$SUITE" ] || script=(/usr/share/debootstrap/scripts/sid)
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$BASE" \
    http://deb.debian.org/debian "${script[@]}"
  chroot_no_daemons "$BASE"
  # A mirror behind a caching proxy may serve testing's Release after its Valid-Until date.
  echo 'Acquire::Check-Valid-Until "false";' >"$BASE/etc/apt/apt.conf.d/99relight-rehearsal"
  touch "$BASE/.relight-base-ready"
fi

chroot_unmount "$RUN"
rm -rf --one-file-system "$RUN"
cp -a "$BASE" "$RUN"
trap 'chroot_unmount "$RUN"' EXIT
chroot_trust_host_cas "$RUN"
cp /etc/resolv.conf "$RUN/etc/resolv.conf" 2>/dev/null || true
mkdir -p "$RUN/work/shared"
git clone -q "$REPO" "$RUN/work/main"
mount --bind "$SHARED" "$RUN/work/shared"
chroot_mount "$RUN"
chroot "$RUN" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root CI=true \
  /bin/bash -c 'cd /work/main && echo "rehearsal on Debian $(cat /etc/debian_version)" && bash .ci/run'
