#!/usr/bin/env bash
# busybox-tar.sh OUT: writes to OUT a tar of a root filesystem made of
# Debian's busybox-static — /bin/busybox with a link per applet, root in
# /etc/passwd and /etc/group — for `berth import`, `docker import` or
# `podman import`. busybox must be installed (scripts/deps.sh does it).
set -euo pipefail
out=$1
rootfs=$(mktemp -d /tmp/berth-busybox.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
chmod 755 "$rootfs"
mkdir -p "$rootfs"/{bin,etc,tmp,root}
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for a in $("$rootfs/bin/busybox" --list); do
	[ "$a" = busybox ] || ln -s busybox "$rootfs/bin/$a"
done
echo "root:x:0:0:root:/root:/bin/sh" >"$rootfs/etc/passwd"
echo "root:x:0:" >"$rootfs/etc/group"
tar -C "$rootfs" -cf "$out" .
