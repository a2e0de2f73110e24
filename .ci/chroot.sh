# Chroot plumbing shared by .ci/setup_gimp.sh (the Debian 12 GIMP root) and .ci/rehearse.sh
# (CI in a root of another Debian release). Source it; every function takes the root's path.

# The root's mounts, deepest first; lazily as a last resort so a busy mount never blocks.
chroot_unmount() {
  local target
  findmnt -rn -o TARGET | grep "^$1/" | sort -r | while read -r target; do
    umount "$target" 2>/dev/null || umount -l "$target" 2>/dev/null || true
  done || true  # (grep finds nothing when nothing is mounted)
}

chroot_mounted() { findmnt -rn -o TARGET | grep -q "^$1/" ; }

# What apt and Python need inside: /proc, /sys (read-only), /dev, a fresh /tmp.
chroot_mount() {
  mount -t proc proc "$1/proc"
  mount -t sysfs -o ro sysfs "$1/sys"
  mount --rbind /dev "$1/dev"; mount --make-rslave "$1/dev"
  mount -t tmpfs tmpfs "$1/tmp"
}

# A fresh debootstrap root: packages never start services inside it.
chroot_no_daemons() {
  printf '#!/bin/sh\nexit 101\n' >"$1/usr/sbin/policy-rc.d"; chmod +x "$1/usr/sbin/policy-rc.d"
}

# The host's extra CAs (a TLS-intercepting proxy may sit in front of the registries).
chroot_trust_host_cas() {
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/"
    chroot "$1" update-ca-certificates >/dev/null
  fi
}
