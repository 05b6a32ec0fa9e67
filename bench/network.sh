#!/usr/bin/env bash
# network.sh: what bridge networking costs. berthd and podman run side by
# side in one run, in a network namespace this script makes (so the
# bridges, veths, rules and sysctls they make never touch the host's).
#
# Measures:
#   1. TCP throughput (iperf3, 5 s, five rounds taking turns; medians, and
#      the median of each round's own ratio)
#      from a container's namespace to the host end of the bridge, vs the
#      host's own loopback — before podman's network exists; the same on a
#      network whose MTU is set to docker's 1500 throughout, to show what
#      the default local MTU (65535 on the host, 1500 on the way out) gives
#   2. run --rm busybox true on the default bridge vs --network none, for
#      the berth client → berthd and for podman (runc, its default
#      network stack): the difference is what networking adds to a start
#
# usage (as root): bench/network.sh [rounds]   (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
rounds=${1:-30}
scripts/deps.sh bench
command -v podman >/dev/null || { apt-get install -y -qq --no-install-recommends podman >/dev/null; }

work=$(mktemp -d /tmp/berth-nbench.XXXXXX)
holder= berthd_pid=
cleanup() {
	set +e
	if [ -n "$berthd_pid" ]; then
		"$work/berth" -H "unix://$work/berth.sock" ps -aq 2>/dev/null | xargs -r "$work/berth" -H "unix://$work/berth.sock" rm -f >/dev/null
		kill "$berthd_pid"; wait "$berthd_pid" 2>/dev/null
	fi
	$podman ps -aq 2>/dev/null | xargs -r $podman rm -f -t 0 >/dev/null 2>&1
	for _ in $(seq 50); do [ -e "$work/exec/monitor/monitor.pid" ] || break; sleep 0.1; done
	$podman system reset -f >/dev/null 2>&1
	[ -n "$holder" ] && kill "$holder"
	m=$(stat -c '/run/berth/exe/berth-runtime-%d-%i' "$work/berth-monitor" 2>/dev/null) && { umount -l "$m" 2>/dev/null; rm -f "$m"; }
	rm -rf "$work"
}
trap cleanup EXIT

# The namespace: a process holds it; every command below enters it.
unshare -n sh -c 'ip link set lo up; exec sleep 100000' &
holder=$!
sleep 0.2
ns="nsenter --net=/proc/$holder/ns/net"
podman="$ns podman --root $work/podman --runroot $work/podman-run --tmpdir $work/podman-tmp --cgroup-manager cgroupfs --events-backend file --runtime runc"
ulimits="--ulimit nofile=1024:1024 --ulimit nproc=4096:4096"

scripts/build.sh "$work"
scripts/busybox-tar.sh "$work/busybox.tar"

$ns "$work/berthd" -H "unix://$work/berth.sock" --data-root "$work/data" --exec-root "$work/exec" \
	--pidfile "$work/berthd.pid" --config-file /dev/null --log-level warn 2>"$work/berthd.log" &
berthd_pid=$!
berth="$work/berth -H unix://$work/berth.sock"
for _ in $(seq 100); do [ -S "$work/berth.sock" ] && break; sleep 0.05; done
$berth import "$work/busybox.tar" busybox >/dev/null
$podman import "$work/busybox.tar" localhost/busybox:latest >/dev/null 2>&1
# Warm up; a resident container keeps the default bridge (which berthd
# removes when idle) and podman's network up, as on a host in use.
$berth run -d --name keep busybox sleep 100000 >/dev/null
$berth network create --subnet 10.123.0.0/24 -o com.docker.network.driver.mtu=1500 mtu1500 >/dev/null
$berth run -d --name keep1500 --network mtu1500 busybox sleep 100000 >/dev/null
$berth run --rm busybox true
$berth run --rm --network none busybox true
echo "== 1. TCP throughput, iperf3 5 s × 5 rounds (before podman sets up its network, whose rules would slow this namespace too)"
sandbox() { $berth inspect "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["NetworkSettings"]["SandboxKey"])'; }
key=$(sandbox keep) key1500=$(sandbox keep1500)
tput() { # server address, client's namespace
	$ns iperf3 -s -1 -B "$1" -p 15299 >/dev/null &
	sleep 0.3
	nsenter --net="$2" iperf3 -c "$1" -p 15299 -t 5 -J | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9)'
	wait
}
# Five rounds, the two paths taking turns (the machine is shared and
# noisy): medians, and the median of the rounds' ratios (each pair ran
# back to back, under the same neighbours).
veth=() v1500=() lo=()
for _ in 1 2 3 4 5; do
	veth+=("$(tput 172.17.0.1 "$key")")
	v1500+=("$(tput 10.123.0.1 "$key1500")")
	lo+=("$(tput 127.0.0.1 "/proc/$holder/ns/net")")
done
$berth rm -f keep1500 >/dev/null
$berth network rm mtu1500 >/dev/null
python3 - "${veth[*]}" "${v1500[*]}" "${lo[*]}" <<'PY'
import statistics, sys
v, w, l = ([float(x) for x in a.split()] for a in sys.argv[1:4])
ml = statistics.median(l)
for name, xs in (("default bridge", v), ("MTU 1500 network", w)):
    m = statistics.median(xs)
    paired = statistics.median(a / b for a, b in zip(xs, l))
    print(f"  container → host, {name:16} {m:6.2f} Gbit/s   host loopback {ml:6.2f} Gbit/s   ratio {m/ml:5.2f} (per round: median {paired:4.2f})")
print("  (rounds: default " + " ".join(f"{x:.2f}" for x in v) + "; MTU 1500 " + " ".join(f"{x:.2f}" for x in w) + "; loopback " + " ".join(f"{x:.2f}" for x in l) + ")")
PY

podman_bridge=1
$podman run -d --name keep $ulimits localhost/busybox sleep 100000 >/dev/null 2>&1 || podman_bridge=0
$podman run --rm --network none $ulimits localhost/busybox true

echo "== 2. run --rm busybox true: bridge vs --network none ($rounds rounds each)"
cmds=("$berth run --rm --network none busybox true" "$berth run --rm busybox true"
	"$podman run --rm --network none $ulimits localhost/busybox true")
[ $podman_bridge = 1 ] && cmds+=("$podman run --rm $ulimits localhost/busybox true")
hyperfine -N -w 3 -r "$rounds" --export-json "$work/run.json" --style basic "${cmds[@]}" >/dev/null
python3 - "$work/run.json" "$podman_bridge" <<'PY'
import json, statistics, sys
rs = json.load(open(sys.argv[1]))["results"]
med = [statistics.median(r["times"]) * 1000 for r in rs]
print(f"  berth  --network none {med[0]:7.1f} ms   bridge {med[1]:7.1f} ms   networking adds {med[1]-med[0]:6.1f} ms")
if sys.argv[2] == "1":
    print(f"  podman --network none {med[2]:7.1f} ms   bridge {med[3]:7.1f} ms   networking adds {med[3]-med[2]:6.1f} ms")
else:
    print(f"  podman --network none {med[2]:7.1f} ms   bridge: podman's network stack failed here")
PY

