#!/usr/bin/env bash
# cri.sh: a Kubernetes node's cost per pod. Debian's containerd (its CRI
# plugin, the runc shim) with runc and with berth-runtime as the runtime
# handler: the median time of crictl runp + create + start of a pod with
# one container, interleaved round by round, and the host memory an idle
# pod adds (proportional set size of containerd, the shims and the pods'
# processes, over 10 pods). The containerd set-up is the tests'
# (test/harness StartContainerd: private root, state, socket, CNI in a
# network namespace of its own).
#
# usage (as root): bench/cri.sh [rounds]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
rounds=${1:-20}
scripts/deps.sh
BERTH_BENCH_CRI=$rounds go test -count=1 -timeout 30m -run '^TestCRIBench$' -v ./test/critest/ |
	grep -v -e '^=== RUN' -e '^--- PASS' -e '^PASS$' -e '^ok '
