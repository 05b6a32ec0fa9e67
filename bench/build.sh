#!/usr/bin/env bash
# build.sh: docker build against berthd, against Debian's dockerd (its
# classic builder, DOCKER_BUILDKIT=0) and buildah (vfs), side by side in
# one run, on the same busybox base image and the same Dockerfiles.
#
# Builds:
#   A. three stages, 300 small files COPYed into the first
#   B. RUN-heavy: ten RUN steps in one stage
# Each is measured cold (--no-cache), fully cached, and after one changed
# context file (A only). The engines take turns round by round; printed are
# medians and ratios to Berth's.
#
# dockerd runs in a network namespace of its own, without bridge or
# iptables (see shared/reference/oracles.md), on its own data root.
#
# usage (as root): bench/build.sh [rounds]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
rounds=${1:-5}
scripts/deps.sh
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v buildah >/dev/null || need+=(buildah)
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

work=$(mktemp -d /tmp/berth-bbench.XXXXXX)
chmod 755 "$work"
berthd_pid= dockerd_pid=
echo "{}" >"$work/daemon.json"
cleanup() {
	set +e
	[ -n "$berthd_pid" ] && { kill "$berthd_pid"; wait "$berthd_pid" 2>/dev/null; }
	[ -n "$dockerd_pid" ] && { kill "$dockerd_pid"; wait "$dockerd_pid" 2>/dev/null; }
	for _ in $(seq 50); do [ -e "$work/exec/monitor/monitor.pid" ] || break; sleep 0.1; done
	m=$(stat -c '/run/berth/exe/berth-runtime-%d-%i' "$work/berth-monitor" 2>/dev/null) && { umount -l "$m" 2>/dev/null; rm -f "$m"; }
	grep " $work/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

scripts/build.sh "$work" >/dev/null
scripts/busybox-tar.sh "$work/busybox.tar"

"$work/berthd" -H "unix://$work/berth.sock" --data-root "$work/data" --exec-root "$work/exec" \
	--pidfile "$work/berthd.pid" --config-file /dev/null --log-level warn 2>"$work/berthd.log" &
berthd_pid=$!
unshare -n bash -c "ip link set lo up; exec dockerd -H unix://$work/docker.sock --data-root $work/docker \
	--exec-root $work/docker-exec --pidfile $work/docker.pid --bridge none --iptables=false \
	--config-file $work/daemon.json" >"$work/dockerd.log" 2>&1 &
dockerd_pid=$!
for _ in $(seq 200); do [ -S "$work/berth.sock" ] && [ -S "$work/docker.sock" ] && break; sleep 0.1; done
berth="env DOCKER_HOST=unix://$work/berth.sock DOCKER_BUILDKIT=0 docker"
docker="env DOCKER_HOST=unix://$work/docker.sock DOCKER_BUILDKIT=0 docker"
buildah="buildah --root $work/buildah --runroot $work/buildah-run --storage-driver vfs"
$berth import "$work/busybox.tar" busybox:latest >/dev/null
$docker import "$work/busybox.tar" busybox:latest >/dev/null
$berth save -o "$work/busybox-archive.tar" busybox:latest
$buildah pull -q "docker-archive:$work/busybox-archive.tar" >/dev/null
$buildah tag "$($buildah images -q | head -1)" busybox:latest

mkdir -p "$work/a/files" "$work/b"
for i in $(seq 300); do echo "file $i $RANDOM" >"$work/a/files/f$i.txt"; done
cat >"$work/a/Dockerfile" <<'EOF'
FROM busybox AS deps
COPY files/ /src/
RUN cat /src/* | wc -c > /deps.txt
FROM busybox AS build
COPY --from=deps /deps.txt /out/
RUN echo built > /out/built
FROM busybox
COPY --from=build /out /app
CMD ["cat", "/app/built"]
EOF
{
	echo "FROM busybox"
	for i in $(seq 10); do echo "RUN echo step $i > /step$i && ls / >/dev/null"; done
} >"$work/b/Dockerfile"

# ms runs a command and prints its wall time in milliseconds.
ms() {
	local t0 t1
	t0=$(date +%s%N)
	"$@" >/dev/null 2>&1 || { echo "bench: failed: $*" >&2; exit 1; }
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}
engines=(berth docker buildah)
build_with() { # engine dir extra-args...
	local e=$1 dir=$2
	shift 2
	case $e in
	berth) (cd "$dir" && $berth build -q "$@" -t bench:1 .) ;;
	docker) (cd "$dir" && $docker build -q "$@" -t bench:1 .) ;;
	buildah) (cd "$dir" && $buildah bud -q --isolation chroot --layers "$@" -t bench:1 .) ;;
	esac
}
declare -A res
for r in $(seq "$rounds"); do
	for e in "${engines[@]}"; do
		res[$e.a.cold]+="$(ms build_with "$e" "$work/a" --no-cache) "
		res[$e.a.cached]+="$(ms build_with "$e" "$work/a") "
		echo "file 1 round $r $RANDOM" >"$work/a/files/f1.txt"
		res[$e.a.changed]+="$(ms build_with "$e" "$work/a") "
		res[$e.b.cold]+="$(ms build_with "$e" "$work/b" --no-cache) "
		res[$e.b.cached]+="$(ms build_with "$e" "$work/b") "
	done
done
python3 - "$rounds" <<PY
import statistics, sys
res = {$(for k in "${!res[@]}"; do printf '"%s": [%s], ' "$k" "$(echo ${res[$k]} | tr ' ' ',')"; done)}
print(f"== docker build, {sys.argv[1]} rounds: median ms (ratio to berth)")
rows = [("A 3 stages, 300 files: cold", "a.cold"), ("A fully cached", "a.cached"), ("A one file changed", "a.changed"),
        ("B 10 RUNs: cold", "b.cold"), ("B fully cached", "b.cached")]
print(f"  {'':32s} {'berthd':>10s} {'dockerd':>16s} {'buildah (vfs)':>18s}")
for name, k in rows:
    b = statistics.median(res["berth." + k])
    d = statistics.median(res["docker." + k])
    h = statistics.median(res["buildah." + k])
    print(f"  {name:32s} {b:8.0f} ms {d:8.0f} ms ({d/b:4.1f}x) {h:8.0f} ms ({h/b:5.1f}x)")
PY
