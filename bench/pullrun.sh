#!/usr/bin/env bash
# pullrun.sh: what a pull in flight costs a container's create and remove
# in the image store (the writable layer made and removed, the store's
# share of every `docker run --rm`): idle, and while a ~250 MB image is
# pulled from a registry on loopback (Debian's docker-registry). Prints
# medians and their ratio.
#
# usage (as root): bench/pullrun.sh [rounds]   (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
rounds=${1:-50}
scripts/deps.sh
work=$(mktemp -d /var/tmp/berth-pullrun.XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/pullrunbench" ./bench/pullrunbench
echo "host: $(nproc) CPUs, kernel $(uname -r)"
"$work/pullrunbench" -n "$rounds" -work "$work"

# The same through berthd and the docker CLI: `run --rm` of busybox,
# idle, and while `docker pull` of the ~250 MB image runs.
echo "== docker run --rm --network none busybox true, through berthd"
scripts/build.sh "$work/bin" >/dev/null
scripts/busybox-tar.sh "$work/busybox.tar"
coproc SERVE { nice -n 19 "$work/pullrunbench" -serve -work "$work/serve"; }
read -r big <&"${SERVE[0]}"
"$work/bin/berthd" -H "unix://$work/berth.sock" --data-root "$work/data" --exec-root "$work/exec" \
	--pidfile "$work/berthd.pid" --config-file /dev/null --log-level warn 2>"$work/berthd.log" &
berthd_pid=$!
trap 'kill $berthd_pid 2>/dev/null; wait $berthd_pid 2>/dev/null; exec {SERVE[1]}>&-; m=$(stat -c "/run/berth/exe/berth-runtime-%d-%i" "$work/bin/berth-monitor" 2>/dev/null) && { umount -l "$m" 2>/dev/null; rm -f "$m"; }; rm -rf "$work"' EXIT
export DOCKER_HOST=unix://$work/berth.sock
for _ in $(seq 100); do [ -S "$work/berth.sock" ] && break; sleep 0.05; done
docker import "$work/busybox.tar" busybox:latest >/dev/null
for _ in 1 2 3; do docker run --rm --network none busybox true; done # warm
runs() { # runs N: N timed `run --rm`, one per line, in ms
	for _ in $(seq "$1"); do
		s=$(date +%s%N); docker run --rm --network none busybox true; e=$(date +%s%N)
		echo $(((e - s) / 1000))
	done
}
med() { sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[int((NR+1)/2)]/1000}'; }
idle=$(runs "$rounds" | med)
docker pull -q "$big" >/dev/null &
pull=$!
sleep 0.2
d=$(while kill -0 $pull 2>/dev/null; do runs 1; done)
during=$(med <<<"$d")
wait $pull
# The same host work without berthd: the big image's layer blobs, as the
# registry stores them, unpacked by gzip and tar.
mkdir "$work/untar"
(find "$work/serve" -name data -size +10M | while read -r b; do tar -xzf "$b" -C "$work/untar"; done) &
untar=$!
sleep 0.2
p=$(while kill -0 $untar 2>/dev/null; do runs 1; done)
plain=$(med <<<"$p")
wait $untar
ratio() { awk -v a="$1" -v b="$idle" 'BEGIN {printf "%.2f", a/b}'; }
echo "  idle daemon        $idle ms"
echo "  during the pull    $during ms  ($(ratio "$during")x idle; $(wc -l <<<"$d") rounds)"
echo "  during tar -xzf    $plain ms  ($(ratio "$plain")x idle; $(wc -l <<<"$p") rounds; the same layers unpacked without berthd)"
