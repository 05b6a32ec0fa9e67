#!/usr/bin/env bash
# test.sh: the project's checks — formatting, vet, staticcheck, goimports,
# the library packages under the race detector, and every test, the
# integration ones as root for real. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
scripts/deps.sh
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
# staticcheck and goimports from the module proxy, at fixed versions (tools
# of the checks, not dependencies of Berth).
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...
unimported=$(go run golang.org/x/tools/cmd/goimports@v0.52.0 -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unimported" ]; then
	echo "goimports would change:" >&2
	echo "$unimported" >&2
	exit 1
fi
# The library packages under the race detector; test/ and cmd/ drive the
# binaries, which it would not instrument, so they run once, below.
go test -count=1 -race "$@" $(go list ./... | grep -v -e /test/ -e /cmd/)
go test -count=1 "$@" ./...
