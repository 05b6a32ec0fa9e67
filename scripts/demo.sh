#!/usr/bin/env bash
# demo.sh: build Berth, start berthd on a private socket and data root,
# make a busybox image from Debian's busybox-static, and run it with the
# berth client: an interactive shell on a terminal, a greeting otherwise.
# Needs root; no network beyond Debian's package mirror (for
# busybox-static, if missing). Everything it starts is stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
scripts/deps.sh
scripts/build.sh bin

work=${DEMO_DIR:-/tmp/berth-demo}
berthd_pid=
# berthd's default bridge stays once made, as docker0 does; the demo
# removes it again if it made it.
had_bridge=$(ip link show berth0 >/dev/null 2>&1 && echo 1 || true)
stop() {
	set +e
	if [ -n "$berthd_pid" ]; then
		bin/berth ps -aq | xargs -r bin/berth rm -f >/dev/null
		kill "$berthd_pid"
		wait "$berthd_pid"
	fi
	[ -n "$had_bridge" ] || ip link del berth0 2>/dev/null
}
trap stop EXIT
mkdir -p "$work"
export BERTH_HOST=unix://$work/berth.sock
bin/berthd -H "$BERTH_HOST" --data-root "$work/data" --exec-root "$work/exec" \
	--pidfile "$work/berthd.pid" --config-file /dev/null --log-level warn 2>>"$work/berthd.log" &
berthd_pid=$!
for _ in $(seq 100); do [ -S "$work/berth.sock" ] && break; sleep 0.05; done
echo "berthd is listening on $BERTH_HOST (log: $work/berthd.log)"

# The image: busybox-static with a link per applet, imported through the API.
scripts/busybox-tar.sh "$work/busybox.tar"
bin/berth import "$work/busybox.tar" busybox:latest >/dev/null
rm -f "$work/busybox.tar"

if [ -t 0 ] && [ -t 1 ]; then
	echo "berth run -it --rm busybox sh: an interactive busybox shell (type exit to leave)"
	bin/berth run -it --rm busybox sh
else
	bin/berth run --rm busybox sh -c 'echo "hello from $(hostname), pid $$, in a container"; uname -r'
fi
