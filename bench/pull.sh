#!/usr/bin/env bash
# pull.sh: pull + unpack of a ~100 MB four-layer image from a registry on
# loopback (Debian's docker-registry): Berth's image store against
# `tar -xzf` of the same layer blobs and `skopeo copy` + `tar -xzf`, side by
# side, interleaved. Runs twice: with the data on this machine's disk, and
# on a tmpfs (which takes the shared disk's noise out and leaves the CPU
# work). Prints medians and ratios.
#
# usage (as root): bench/pull.sh [rounds]   (default 7)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
rounds=${1:-7}
scripts/deps.sh bench
work=$(mktemp -d /var/tmp/berth-pullbench.XXXXXX)
cleanup() {
	umount "$work/tmpfs" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/pullbench" ./bench/pullbench
echo "host: $(nproc) CPUs, kernel $(uname -r); $(tar --version | head -1); $(skopeo --version)"
echo "== data on disk ($(df -T "$work" | awk 'NR==2 {print $2}'))"
mkdir "$work/disk"
"$work/pullbench" -n "$rounds" -work "$work/disk"
echo "== data on tmpfs"
mkdir "$work/tmpfs"
mount -t tmpfs -o size=4g tmpfs "$work/tmpfs"
"$work/pullbench" -n "$rounds" -work "$work/tmpfs"
