#!/usr/bin/env bash
# demo.sh: build berth-runtime and run a container from a busybox rootfs
# made from Debian's busybox-static. Needs root; no network beyond Debian's
# package mirror (for busybox-static, if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
scripts/deps.sh
scripts/build.sh bin

bundle=${BUNDLE:-/tmp/berth-demo}
rm -rf "$bundle"
mkdir -p "$bundle/rootfs"/{bin,proc,sys,dev,tmp,etc}
cp "$(command -v busybox)" "$bundle/rootfs/bin/busybox"
for a in $("$bundle/rootfs/bin/busybox" --list); do
	[ "$a" = busybox ] || ln -sf busybox "$bundle/rootfs/bin/$a"
done
echo "root:x:0:0:root:/root:/bin/sh" > "$bundle/rootfs/etc/passwd"
bin/berth-runtime spec --bundle "$bundle"

id=berth-demo-$$
if [ -t 0 ] && [ -t 1 ]; then
	echo "berth-runtime run $id: an interactive busybox shell (type exit to leave)"
	exec bin/berth-runtime run --bundle "$bundle" "$id"
fi
# Not on a terminal: run a command instead of an interactive shell.
python3 - "$bundle/config.json" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = ["sh", "-c", "echo hello from $(hostname), pid $$, in a container; uname -r"]
json.dump(c, open(p, "w"), indent=1)
PY
bin/berth-runtime run --bundle "$bundle" "$id"
