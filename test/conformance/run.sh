#!/usr/bin/env bash
# run.sh: the OCI runtime-tools validation suite against berth-runtime (and,
# with --anchors, Debian's runc and crun in the same run), one test program
# at a time, printing TAP totals per runtime.
#
# usage: test/conformance/run.sh [--anchors] [--no-unified]
#   --anchors     also run Debian's runc and crun; implies --no-unified
#   --no-unified  run every test in a private mount namespace without the
#                 cgroup2 mount at /sys/fs/cgroup/unified (crun refuses this
#                 host's hybrid layout otherwise); the host is not touched
#   MIN_CLEAN (env): fail unless berth-runtime has at least this many clean
#   files (a regression guard for CI).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
MODULE=github.com/opencontainers/runtime-tools
VERSION=v0.9.1-0.20251205004911-5e639034dcdc
WORK=${WORK:-/var/tmp/berth-conformance}
MIN_CLEAN=${MIN_CLEAN:-0}
anchors=0
nounified=0
for a in "$@"; do
	case "$a" in
	--anchors) anchors=1; nounified=1 ;;
	--no-unified) nounified=1 ;;
	*) echo "unknown argument $a" >&2; exit 2 ;;
	esac
done
[ $anchors = 1 ] && scripts/deps.sh bench || scripts/deps.sh

mkdir -p "$WORK/tests" "$WORK/results"
scripts/build.sh "$WORK"
# Build the suite from a scratch module that requires it (module zips carry
# no vendor directory).
mod="$WORK/mod"
mkdir -p "$mod"
if [ ! -e "$mod/go.mod" ]; then
	(cd "$mod" && go mod init berth-conformance >/dev/null 2>&1 && GOFLAGS=-mod=mod go get "$MODULE@$VERSION" >/dev/null 2>&1)
fi
src=$(cd "$mod" && go list -m -f '{{.Dir}}' "$MODULE")
[ -d "$src" ] || { echo "could not fetch $MODULE@$VERSION" >&2; exit 1; }
tests=$(cd "$src/validation" && ls -d */ | tr -d / | grep -v '^util$')
if [ ! -e "$WORK/tests/.built-$VERSION" ]; then
	(cd "$mod" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -o "$WORK/runtimetest" "$MODULE/cmd/runtimetest")
	for t in $tests; do
		(cd "$mod" && GOFLAGS=-mod=mod go build -o "$WORK/tests/$t.t" "$MODULE/validation/$t")
	done
	touch "$WORK/tests/.built-$VERSION"
fi

runtimes=("$WORK/berth-runtime")
if [ $anchors = 1 ]; then
	# crun 1.8 refuses the ociVersion 1.3.0 this suite writes; its wrapper
	# presents 1.0.2 (what crun knows) and changes nothing else.
	mkdir -p "$WORK/anchors"
	cat > "$WORK/anchors/crun" <<WRAP
#!/bin/sh
bundle=.
prev=
for a in "\$@"; do
	case "\$prev" in --bundle|-b) bundle=\$a ;; esac
	prev=\$a
done
[ -f "\$bundle/config.json" ] && sed -i 's/"ociVersion": *"1\.3\.0"/"ociVersion":"1.0.2"/' "\$bundle/config.json"
exec $(command -v crun) "\$@"
WRAP
	chmod +x "$WORK/anchors/crun"
	runtimes+=("$(command -v runc)" "$WORK/anchors/crun")
fi

# run_test FILE.t: one test program, in a private mount namespace without
# the unified cgroup mount when asked. Afterwards: force-delete whatever
# containers the test left (some suite tests never delete theirs), and, in
# the private namespace, remove what a runtime created in the tmpfs
# directory under the hidden mount point (crun creates its cgroup
# directories there), which would otherwise stay on the host, hidden.
run_test() {
	local t=$1
	if [ $nounified = 1 ]; then
		unshare --mount --propagation private sh -c '
			umount /sys/fs/cgroup/unified 2>/dev/null
			before=$(ls -A /sys/fs/cgroup/unified 2>/dev/null)
			timeout 120 "$0"; code=$?
			[ -z "$before" ] && find /sys/fs/cgroup/unified -mindepth 1 -depth -delete 2>/dev/null
			exit $code' "$t"
	else
		timeout 120 "$t"
	fi
}

summary=()
for rt in "${runtimes[@]}"; do
	name=$(basename "$rt")
	out="$WORK/results/$name"
	rm -rf "$out"; mkdir -p "$out"
	pass=0 fail=0 skip=0 clean=0 files=0
	start=$(date +%s)
	for t in $tests; do
		run=$(mktemp -d "$WORK/run.XXXXXX")
		tmp_before=$(ls -d "${TMPDIR:-/tmp}"/ocitest* 2>/dev/null || true)
		cp "$src/rootfs-amd64.tar.gz" "$WORK/runtimetest" "$run/"
		set +e
		before=$("$rt" list -q 2>/dev/null)
		(cd "$run" && RUNTIME="$rt" run_test "$WORK/tests/$t.t") >"$out/$t.tap" 2>&1
		code=$?
		for id in $("$rt" list -q 2>/dev/null); do
			echo "$before" | grep -qx "$id" || "$rt" delete --force "$id" >/dev/null 2>&1
		done
		set -e
		rm -rf "$run"
		# The suite's programs leave some of their bundles (ocitest*) in
		# /tmp: remove the ones this test made (by name: their dates are
		# the rootfs tarball's).
		for d in "${TMPDIR:-/tmp}"/ocitest*; do
			[ -e "$d" ] || continue
			echo "$tmp_before" | grep -qxF "$d" || rm -rf "$d"
		done
		p=$(grep -c '^ok ' "$out/$t.tap" || true)
		s=$(grep -c '^ok .*# SKIP' "$out/$t.tap" || true)
		f=$(grep -c '^not ok ' "$out/$t.tap" || true)
		pass=$((pass + p - s)); skip=$((skip + s)); fail=$((fail + f)); files=$((files + 1))
		if [ "$code" = 0 ] && [ "$f" = 0 ]; then
			clean=$((clean + 1))
		else
			echo "$name: $t: exit $code, $f failed" >> "$out/SUMMARY"
		fi
	done
	wall=$(( $(date +%s) - start ))
	summary+=("$(printf '%-14s %5d / %3d / %3d   %2d of %2d   %4ds' "$name" $pass $fail $skip $clean $files $wall)")
	[ "$name" = berth-runtime ] && berth_clean=$clean
done

# berth-runtime keeps a read-only mount of its binary (docs/architecture.md);
# remove this build's.
m=$(stat -c '/run/berth/exe/berth-runtime-%d-%i' "$WORK/berth-runtime")
umount -l "$m" 2>/dev/null || true
rm -f "$m"

echo "runtime        passed/failed/skipped  clean files  wall"
printf '%s\n' "${summary[@]}"
echo "(TAP per file under $WORK/results/<runtime>/; failures in SUMMARY)"
if [ "${berth_clean:-0}" -lt "$MIN_CLEAN" ]; then
	echo "berth-runtime: $berth_clean clean files, fewer than MIN_CLEAN=$MIN_CLEAN" >&2
	exit 1
fi
