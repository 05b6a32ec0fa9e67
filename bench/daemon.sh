#!/usr/bin/env bash
# daemon.sh: berthd (driven by the real docker CLI, and by the berth client
# when built) against Debian's podman, side by side in one run, on the same
# busybox image (Debian's busybox-static, imported into both).
#
# Measures:
#   1. run --rm --network none busybox true — the whole client → daemon →
#      container → exit → remove path (hyperfine: warm-up, then the rounds
#      of each command back to back)
#   2. run -d of 50 containers at once, then removing them
#   3. host memory per idle container: what Berth keeps (berth-monitor's
#      and berthd's RSS growth over 50 idle containers, per container) vs
#      podman's conmon (one per container)
#
# podman runs with its own root, cgroupfs, runc (crun refuses this hybrid
# cgroup host) and rlimits this host allows (CAP_SYS_RESOURCE is absent,
# so podman's default raised limits fail).
#
# usage (as root): bench/daemon.sh [rounds]   (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
rounds=${1:-30}
n=50
scripts/deps.sh bench
command -v podman >/dev/null || { apt-get install -y -qq --no-install-recommends podman >/dev/null; }
command -v docker >/dev/null || { echo "daemon.sh: the docker CLI is needed (client only)" >&2; exit 1; }

work=$(mktemp -d /tmp/berth-dbench.XXXXXX)
berthd_pid=
cleanup() {
	set +e
	if [ -n "$berthd_pid" ]; then
		DOCKER_HOST=unix://$work/berth.sock docker ps -aq | xargs -r env DOCKER_HOST=unix://$work/berth.sock docker rm -f >/dev/null
		kill "$berthd_pid"; wait "$berthd_pid" 2>/dev/null
	fi
	$podman ps -aq 2>/dev/null | xargs -r $podman rm -f -t 0 >/dev/null 2>&1
	# The monitor exits by itself once idle; wait for it.
	for _ in $(seq 50); do [ -e "$work/exec/monitor/monitor.pid" ] || break; sleep 0.1; done
	$podman system reset -f >/dev/null 2>&1
	m=$(stat -c '/run/berth/exe/berth-runtime-%d-%i' "$work/berth-monitor" 2>/dev/null) && { umount -l "$m" 2>/dev/null; rm -f "$m"; }
	rm -rf "$work"
}
trap cleanup EXIT
podman="podman --root $work/podman --runroot $work/podman-run --tmpdir $work/podman-tmp --cgroup-manager cgroupfs --events-backend file --runtime runc"
ulimits="--ulimit nofile=1024:1024 --ulimit nproc=4096:4096"

scripts/build.sh "$work"

# The image: busybox-static and its applets.
scripts/busybox-tar.sh "$work/busybox.tar"

"$work/berthd" -H "unix://$work/berth.sock" --data-root "$work/data" --exec-root "$work/exec" \
	--pidfile "$work/berthd.pid" --config-file /dev/null --log-level warn 2>"$work/berthd.log" &
berthd_pid=$!
export DOCKER_HOST=unix://$work/berth.sock
for _ in $(seq 100); do [ -S "$work/berth.sock" ] && break; sleep 0.05; done
docker import "$work/busybox.tar" busybox:latest >/dev/null
$podman import "$work/busybox.tar" localhost/busybox:latest >/dev/null 2>&1
# Warm both (first-use work: binary mounts, podman's storage setup).
docker run --rm --network none busybox true
$podman run --rm --network none $ulimits localhost/busybox true

echo "== 1. run --rm --network none busybox true ($rounds rounds each)"
hyperfine -N -w 3 -r "$rounds" --export-json "$work/run.json" --style basic \
	"$work/berth run --rm --network none busybox true" \
	"docker run --rm --network none busybox true" \
	"$podman run --rm --network none $ulimits localhost/busybox true" >/dev/null
python3 - "$work/run.json" <<'PY'
import json, statistics, sys
rs = json.load(open(sys.argv[1]))["results"]
names = ["berth → berthd", "docker CLI → berthd", "podman (runc)"]
meds = [statistics.median(r["times"]) * 1000 for r in rs]
for name, r, m in zip(names, rs, meds):
    p90 = sorted(r["times"])[int(len(r["times"]) * 0.9) - 1] * 1000
    print(f"  {name:22s} median {m:7.1f} ms   p90 {p90:7.1f} ms   ratio to berth {m / meds[0]:5.2f}x")
print(f"  berth/podman = {meds[0] / meds[2]:.3f}, docker CLI→berthd/podman = {meds[1] / meds[2]:.3f} (goal ≤ 0.25)")
PY

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
echo "== 2. run -d of $n containers at once, then rm -f"
mon_pid=$(cat "$work/exec/monitor/monitor.pid")
mon0=$(rss_kb "$mon_pid"); d0=$(rss_kb "$berthd_pid")
t0=$(date +%s.%N)
seq $n | xargs -P $n -I{} docker run -d --network none --name b{} busybox sleep 3600 >/dev/null
t1=$(date +%s.%N)
seq $n | xargs -P $n -I{} $podman run -d --network none $ulimits --name p{} localhost/busybox sleep 3600 >/dev/null 2>&1
t2=$(date +%s.%N)
[ "$(docker ps -q | wc -l)" = $n ] || echo "  warning: only $(docker ps -q | wc -l) berth containers run"
[ "$($podman ps -q | wc -l)" = $n ] || echo "  warning: only $($podman ps -q | wc -l) podman containers run"
sleep 2
mon1=$(rss_kb "$mon_pid"); d1=$(rss_kb "$berthd_pid")
conmon_total=0; conmons=0
for p in $(pgrep -x conmon); do
	if grep -q -- "$work/podman" "/proc/$p/cmdline" 2>/dev/null; then
		conmon_total=$((conmon_total + $(rss_kb "$p"))); conmons=$((conmons + 1))
	fi
done
python3 - "$t0" "$t1" "$t2" <<PY
import sys
t0, t1, t2 = map(float, sys.argv[1:])
b, p = t1 - t0, t2 - t1
print(f"  berthd  {b*1000:7.0f} ms for $n   podman {p*1000:7.0f} ms for $n   berthd/podman = {b/p:.2f}")
print("== 3. host memory per idle container ($n idle containers)")
mon0, mon1, d0, d1 = $mon0, $mon1, $d0, $d1
per = (mon1 - mon0 + max(d1 - d0, 0)) / $n
print(f"  berth-monitor RSS {mon0} → {mon1} kB, berthd RSS {d0} → {d1} kB")
print(f"  Berth per container: {per:.0f} kB growth; monitor total / $n = {mon1 / $n:.0f} kB")
if $conmons:
    print(f"  podman: {$conmons} conmon, {$conmon_total / $conmons:.0f} kB each")
    print(f"  Berth/conmon (growth per container) = {per / ($conmon_total / $conmons):.3f}")
PY
t3=$(date +%s.%N)
docker ps -aq | xargs -r docker rm -f >/dev/null
t4=$(date +%s.%N)
$podman ps -aq | xargs -r $podman rm -f -t 0 >/dev/null 2>&1
t5=$(date +%s.%N)
python3 -c "b=$t4-$t3; p=$t5-$t4; print(f'  rm -f of $n: berthd {b*1000:.0f} ms, podman {p*1000:.0f} ms')"
