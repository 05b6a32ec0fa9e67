#!/usr/bin/env bash
# build.sh: build Berth's binaries into a directory (default bin/):
#   berth-runtime, berth-monitor  statically linked with musl (the cgo
#                                 constructor of container/nsenter): each
#                                 container's init is one of them
#                                 re-executed, and pays no dynamic loader;
#                                 musl keeps the runtime's memory ~1 MB
#                                 below a static glibc (docs/architecture.md)
#   berthd, berth                 the daemon and the client
#   berth-init                    the static C reaper of `run --init`
# berthd finds berth-monitor and berth-init beside itself.
# Usage: scripts/build.sh [dir]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
out=${1:-bin}
mkdir -p "$out"
static=(-tags netgo,osusergo -ldflags '-linkmode external -extldflags "-static"')
# The runtime without inlining: its binary is ~6% smaller, and a runtime
# command's peak RSS is mostly its binary (docs/architecture.md, Speed).
CC=musl-gcc go build "${static[@]}" -gcflags=all=-l -trimpath -o "$out/berth-runtime" ./cmd/berth-runtime
CC=musl-gcc go build "${static[@]}" -o "$out/berth-monitor" ./cmd/berth-monitor
go build -o "$out/berthd" ./cmd/berthd
# The client needs no cgo: static and quicker to start (~4 ms, not ~5).
CGO_ENABLED=0 go build -o "$out/berth" ./cmd/berth
gcc -O2 -static -Wall -o "$out/berth-init" cmd/berth-init/berth-init.c
