#!/usr/bin/env bash
# soak.sh: berth-monitor, then berthd, killed with SIGKILL again and again
# under running containers, as a crash or the OOM killer would. Prints,
# for each loop and per 100 kills: log lines lost by a container that
# logs a counter, exit statuses lost or wrong (short containers started
# during the loop, each exiting with a known code), and what is left
# afterwards: mounts under the daemon's directories, cgroups under its
# cgroup parent, veths and berthd descriptors beyond the start's.
#
# berthd runs in a network namespace of its own, held by a sleep, on its
# own data and exec roots; everything is removed at the end.
#
# usage (as root): bench/soak.sh [kills]   (default 100 per loop)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
kills=${1:-100}
scripts/deps.sh

work=$(mktemp -d /tmp/berth-soak.XXXXXX)
chmod 755 "$work"
cg=/berth-soak-$$
holder= berthd_pid=
cleanup() {
	set +e
	[ -S "$work/berth.sock" ] && docker -H "unix://$work/berth.sock" ps -aq | xargs -r docker -H "unix://$work/berth.sock" rm -f >/dev/null
	[ -n "$berthd_pid" ] && kill "$berthd_pid" 2>/dev/null && sleep 1
	m=$(cat "$work/exec/monitor/monitor.pid" 2>/dev/null) && kill "$m" 2>/dev/null
	[ -n "$holder" ] && kill "$holder"
	grep " $work/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
	for c in /sys/fs/cgroup/*/"$cg" /sys/fs/cgroup/unified/"$cg"; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null; done
	m=$(stat -c '/run/berth/exe/berth-runtime-%d-%i' "$work/berth-monitor" 2>/dev/null) && { umount -l "$m" 2>/dev/null; rm -f "$m"; }
	if [ -n "${SOAK_KEEP:-}" ]; then cp "$work/berthd.log" /tmp/soak-berthd.log; cp "$work/exec/monitor/monitor.log" /tmp/soak-monitor.log 2>/dev/null; fi
	rm -rf "$work"
}
trap cleanup EXIT

scripts/build.sh "$work" >/dev/null
scripts/busybox-tar.sh "$work/busybox.tar"
unshare -n sleep 1000000 &
holder=$!
sleep 0.2
netns=/proc/$holder/ns/net
start_berthd() {
	busybox nsenter --net="$netns" "$work/berthd" -H "unix://$work/berth.sock" --data-root "$work/data" \
		--exec-root "$work/exec" --pidfile "$work/berthd.pid" --config-file /dev/null --log-level warn \
		--cgroup-parent "$cg" 2>>"$work/berthd.log" &
	berthd_pid=$!
	for _ in $(seq 100); do docker -H "unix://$work/berth.sock" version >/dev/null 2>&1 && return; sleep 0.05; done
	echo "berthd did not start" >&2
	exit 1
}
d() { docker -H "unix://$work/berth.sock" "$@"; }
monitor_pid() { cat "$work/exec/monitor/monitor.pid" 2>/dev/null || echo 0; }
mounts() { grep -c " $work/" /proc/mounts || true; }
cgroups() { find /sys/fs/cgroup/memory"$cg" -mindepth 1 -type d 2>/dev/null | wc -l; }
veths() { busybox nsenter --net="$netns" ip -o link | grep -c veth || true; }
fds() { ls "/proc/$berthd_pid/fd" | wc -l; }
per100() { awk -v n="$1" -v k="$kills" 'BEGIN { printf "%.2f", n * 100 / k }'; }

start_berthd
d import "$work/busybox.tar" busybox >/dev/null
d run --rm busybox true

# loop VICTIM: kill VICTIM (monitor or berthd) $kills times.
loop() {
	local victim=$1
	d rm -f counter >/dev/null 2>&1 || true
	d run -d --name counter busybox sh -c 'i=0; while :; do echo $i; i=$((i+1)); sleep 0.01; done' >/dev/null
	local m0 c0 v0 f0
	m0=$(mounts) c0=$(cgroups) v0=$(veths) f0=$(fds)
	local want=()
	for k in $(seq "$kills"); do
		code=$((k % 100))
		d run -d --name "e$k" busybox sh -c "sleep 0.$((RANDOM % 5)); exit $code" >/dev/null
		want+=("$code")
		if [ "$victim" = monitor ]; then
			old=$(monitor_pid)
			kill -9 "$old"
			for _ in $(seq 100); do n=$(monitor_pid); [ "$n" != "$old" ] && [ "$n" != 0 ] && break; sleep 0.02; done
		else
			kill -9 "$berthd_pid"
			wait "$berthd_pid" 2>/dev/null || true
			start_berthd
		fi
		sleep 0.1
	done
	sleep 1
	local lost_exits=0
	for k in $(seq "$kills"); do
		got=$(d inspect -f '{{.State.Status}} {{.State.ExitCode}}' "e$k" 2>/dev/null || echo gone)
		if [ "$got" != "exited ${want[$((k - 1))]}" ]; then
			lost_exits=$((lost_exits + 1))
			[ -z "${SOAK_DEBUG:-}" ] || echo "    e$k: want exited ${want[$((k - 1))]}, got $got ($(d inspect -f "{{.State.Error}}" "e$k" 2>/dev/null))" >&2
		fi
		d rm -f "e$k" >/dev/null 2>&1
	done
	d stop -t 1 counter >/dev/null
	local lines last lost_lines
	lines=$(d logs counter 2>/dev/null | wc -l)
	last=$(d logs counter 2>/dev/null | tail -1)
	lost_lines=$((last + 1 - lines))
	d rm -f counter >/dev/null
	sleep 1
	printf '  %-8s %5d kills: lost lines %d of %d (%.2f per 100 kills), lost or wrong exits %d (%.2f per 100), left: mounts %+d cgroups %+d veths %+d fds %+d\n' \
		"$victim" "$kills" "$lost_lines" "$((last + 1))" "$(per100 "$lost_lines")" "$lost_exits" "$(per100 "$lost_exits")" \
		$(($(mounts) - m0)) $(($(cgroups) - c0)) $(($(veths) - v0)) $(($(fds) - f0))
}

echo "== soak: SIGKILL under running containers"
loop monitor
loop berthd
