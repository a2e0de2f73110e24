#!/usr/bin/env bash
# Run a command inside the trixie root that .ci/setup_gimp.sh built (Debian 12 hosts only).
#
#   run_in_root.sh ROOT [--bind PATH]... [--bind-ro PATH]... [--env NAME=VALUE]... -- CMD...
#
# Each PATH is bind-mounted at the SAME path inside the root, so absolute paths in configs
# (the worker's venv Python, the models folder, test files) work unchanged. The command runs
# with a clean environment (`env -i`) plus the --env values. Everything mounted here is
# unmounted on exit, also on failure or a signal; runs on the same root are serialised by a lock.
set -euo pipefail

R="$1"; shift
[ -x "$R/usr/bin/gimp-console-3" ] || { echo "run_in_root: no GIMP in $R" >&2; exit 3; }
binds=(); ro_binds=(); envs=(PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin LC_ALL=C.UTF-8)
while [ $# -gt 0 ]; do
  case "$1" in
    --bind) binds+=("$2"); shift 2 ;;
    --bind-ro) ro_binds+=("$2"); shift 2 ;;
    --env) envs+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "run_in_root: unknown option $1" >&2; exit 2 ;;
  esac
done

exec 9>"$R/.relight-run.lock"
flock -w 600 9

mounted=()
cleanup() {
  local i
  for ((i=${#mounted[@]}-1; i>=0; i--)); do
    umount -R "${mounted[$i]}" 2>/dev/null || umount -l "${mounted[$i]}" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mount_here() { mount "$@"; mounted+=("${@: -1}"); }

mount_here -t proc proc "$R/proc"
mount_here -t sysfs -o ro sysfs "$R/sys"
mount_here --rbind /dev "$R/dev"; mount --make-rslave "$R/dev"
mount_here -t tmpfs tmpfs "$R/tmp"

bind_same_path() {  # PATH ro|rw
  local src="$1" target="$R$1"
  if [ -d "$src" ]; then mkdir -p "$target"; else mkdir -p "$(dirname "$target")"; touch "$target"; fi
  mount_here --bind "$src" "$target"
  if [ "$2" = ro ]; then mount -o remount,bind,ro "$target"; fi
}
for p in "${binds[@]+"${binds[@]}"}"; do bind_same_path "$p" rw; done
for p in "${ro_binds[@]+"${ro_binds[@]}"}"; do bind_same_path "$p" ro; done

set +e
chroot "$R" env -i "${envs[@]}" "$@"
status=$?
set -e
exit $status
