#!/usr/bin/env bash
# test.sh: the project's checks — formatting, vet, staticcheck, goimports,
# and every test under the race detector, the integration ones as root for
# real. Installs what it needs first.
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
# Every test under the race detector (the binaries the tests under test/
# drive are built as they ship, uninstrumented).
go test -count=1 -race "$@" ./...
