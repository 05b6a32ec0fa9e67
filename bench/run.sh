#!/usr/bin/env bash
# run.sh: berth-runtime against Debian's runc and crun, side by side in one
# run, on a busybox bundle running /bin/true. Prints medians and ratios.
#
# crun refuses this host's hybrid cgroup layout (v1 controllers plus a
# cgroup2 mount holding hugetlb), so every runtime runs alike in a private
# mount namespace where /sys/fs/cgroup/unified is unmounted; the host's
# mounts are not touched.
#
# usage (as root): bench/run.sh [rounds]   (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
rounds=${1:-200}
scripts/deps.sh bench
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
# berth-runtime keeps a read-only mount of its binary under /run/berth/exe
# (docs/architecture.md); remove this build's with the rest.
cleanup() {
	if [ -e "$work/berth-runtime" ]; then
		m=$(stat -c '/run/berth/exe/berth-runtime-%d-%i' "$work/berth-runtime")
		umount -l "$m" 2>/dev/null || true
		rm -f "$m"
	fi
	rm -rf "$work"
}
trap cleanup EXIT
scripts/build.sh "$work"
go build -o "$work/runtimebench" ./bench/runtimebench
gcc -O2 -static -o "$work/rsswrap" bench/rsswrap/rsswrap.c

bundle=$work/bundle
mkdir -p "$bundle/rootfs"/{bin,proc,sys,dev,tmp}
cp "$(command -v busybox)" "$bundle/rootfs/bin/busybox"
ln -s busybox "$bundle/rootfs/bin/true"
"$work/berth-runtime" spec --bundle "$bundle"
python3 - "$bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
# crun 1.8 knows no runtime-spec newer than 1.0.x; all three accept 1.0.2.
c["ociVersion"] = "1.0.2"
json.dump(c, open(p, "w"), indent=1)
PY

echo "host: $(nproc) CPUs, kernel $(uname -r); $(runc --version | head -1); $(crun --version | head -1)"
unshare --mount --propagation private sh -c '
	umount /sys/fs/cgroup/unified 2>/dev/null || true
	before=$(ls -A /sys/fs/cgroup/unified 2>/dev/null)
	"$0" -bundle "$1" -n "$2" -rsswrap "$4" berth-runtime="$3" crun="$(command -v crun)" runc="$(command -v runc)"
	code=$?
	# crun makes its cgroup directories in the tmpfs under the hidden mount
	# point; remove them here, or they stay on the host, hidden.
	[ -z "$before" ] && find /sys/fs/cgroup/unified -mindepth 1 -depth -delete 2>/dev/null
	exit $code
' "$work/runtimebench" "$bundle" "$rounds" "$work/berth-runtime" "$work/rsswrap"
