#!/usr/bin/env bash
# userns.sh: what a user namespace of its own costs a container. berthd
# with --userns-auto (subordinate ids from files of this run, granted to
# the user nobody); `docker run --rm --network none busybox true` with
# --userns=host and with the daemon's default (a range of the container's
# own, its image layers idmapped), interleaved round by round, once the
# image is unpacked. Prints medians and their ratio.
#
# usage (as root): bench/userns.sh [rounds]   (default 40)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
rounds=${1:-40}
scripts/deps.sh
command -v docker >/dev/null || { echo "userns.sh: the docker CLI is needed (client only)" >&2; exit 1; }
work=$(mktemp -d /var/tmp/berth-userns.XXXXXX)
chmod 711 "$work"
berthd_pid=
cleanup() {
	set +e
	if [ -n "$berthd_pid" ]; then
		kill "$berthd_pid"
		wait "$berthd_pid" 2>/dev/null
	fi
	for _ in $(seq 50); do [ -e "$work/exec/monitor/monitor.pid" ] || break; sleep 0.1; done
	m=$(stat -c "/run/berth/exe/berth-runtime-%d-%i" "$work/bin/berth-monitor" 2>/dev/null) && { umount -l "$m" 2>/dev/null; rm -f "$m"; }
	rm -rf "$work"
}
trap cleanup EXIT
scripts/build.sh "$work/bin" >/dev/null
scripts/busybox-tar.sh "$work/busybox.tar"
echo "nobody:4100000:$((64 * 65536))" >"$work/subuid"
echo "nogroup:4100000:$((64 * 65536))" >"$work/subgid"
"$work/bin/berthd" -H "unix://$work/berth.sock" --data-root "$work/data" --exec-root "$work/exec" \
	--pidfile "$work/berthd.pid" --config-file /dev/null --log-level warn --bridge bu-bench0 \
	--userns-auto --userns-remap nobody:nogroup --subuid-file "$work/subuid" --subgid-file "$work/subgid" 2>"$work/berthd.log" &
berthd_pid=$!
export DOCKER_HOST=unix://$work/berth.sock
for _ in $(seq 100); do [ -S "$work/berth.sock" ] && break; sleep 0.05; done
docker import "$work/busybox.tar" busybox:latest >/dev/null
for _ in 1 2 3; do docker run --rm --network none busybox true; docker run --rm --network none --userns=host busybox true; done # warm
ms() { s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(((e - s) / 1000)); }
host=() auto=()
for _ in $(seq "$rounds"); do
	host+=("$(ms docker run --rm --network none --userns=host busybox true)")
	auto+=("$(ms docker run --rm --network none busybox true)")
done
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'; }
h=$(med "${host[@]}") a=$(med "${auto[@]}")
echo "host: $(nproc) CPUs, kernel $(uname -r); $rounds rounds each, interleaved"
echo "docker run --rm --network none busybox true, medians:"
echo "  --userns=host                 $h ms"
echo "  a user namespace of its own   $a ms  ($(awk -v a="$a" -v b="$h" 'BEGIN {printf "%.2f", a/b}')x)"
