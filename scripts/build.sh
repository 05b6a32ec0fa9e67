#!/usr/bin/env bash
# build.sh: build berth-runtime the way it ships — statically linked (glibc
# and libseccomp), so that neither the runtime nor each container's init
# pays for the dynamic loader. Usage: scripts/build.sh [output-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
out=${1:-bin}
mkdir -p "$out"
go build -tags netgo,osusergo -ldflags '-extldflags "-static"' -o "$out/berth-runtime" ./cmd/berth-runtime
