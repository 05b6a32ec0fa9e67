#!/usr/bin/env bash
# deps.sh: install what building and testing Berth needs on a Debian host.
# Idempotent; does nothing for packages already present.
set -euo pipefail
need=()
command -v busybox >/dev/null 2>&1 || need+=(busybox-static)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
command -v ps >/dev/null 2>&1 || need+=(procps)
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v mkfs.btrfs >/dev/null 2>&1 || need+=(btrfs-progs)
command -v iperf3 >/dev/null 2>&1 || need+=(iperf3)
[ -x /usr/sbin/tc ] || need+=(iproute2)
[ -x /usr/sbin/nft ] || need+=(nftables)
command -v musl-gcc >/dev/null 2>&1 || need+=(musl-tools)
# Debian's dockerd is test/dockerparity's oracle (a test tool, never a
# dependency of Berth).
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
# Debian's Compose 1.29, which test/compose drives berthd with.
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
# The Docker SDK for Python, which test/dockercli drives berthd with.
python3 -c "import docker" >/dev/null 2>&1 || need+=(python3-docker)
# Debian's runc and crun are test/integration's oracles for the runtime's
# command line (runc_diff_test.go), as dockerd is berthd's.
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v crun >/dev/null 2>&1 || need+=(crun)
# Debian's containerd runs berth-runtime as a CRI runtime handler beside
# runc, its pods networked by Debian's CNI plugins
# (test/integration/containerd_test.go).
command -v containerd >/dev/null 2>&1 || need+=(containerd)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
# newuidmap and newgidmap map a rootless berthd's subordinate ids
# (TestRootlessDaemon); slirp4netns gives it a route out where the user may
# open /dev/net/tun.
command -v newuidmap >/dev/null 2>&1 || need+=(uidmap)
command -v slirp4netns >/dev/null 2>&1 || need+=(slirp4netns)
# fuse-overlayfs mounts a rootless berthd's containers where the kernel
# refuses overlayfs in a user namespace (TestRootlessDaemon forces it).
command -v fuse-overlayfs >/dev/null 2>&1 || need+=(fuse-overlayfs)
# The systemd cgroup driver's tests boot the host's systemd, with
# dbus-daemon, as pid 1 of a container of their own.
[ -x /lib/systemd/systemd ] || need+=(systemd)
command -v dbus-daemon >/dev/null 2>&1 || need+=(dbus)
# Only seccomp's tests use libseccomp (as the reference compiler).
[ -e /usr/include/seccomp.h ] || need+=(libseccomp-dev)
for extra in "$@"; do
	case "$extra" in
	bench) for p in hyperfine; do command -v "$p" >/dev/null 2>&1 || need+=("$p"); done ;;
	esac
done
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "deps.sh: need root to install: ${need[*]}" >&2
		exit 1
	fi
	apt-get update -qq
	# Installed packages must not start services (docker.io would start a
	# host dockerd): a policy-rc.d refuses them for the time of the install.
	own_policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		own_policy=1
	fi
	status=0
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null || status=$?
	[ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
	[ "$status" = 0 ] || exit "$status"
fi
command -v go >/dev/null 2>&1 || { echo "deps.sh: Go is not installed (expected at /usr/local/go)" >&2; exit 1; }
# crictl, which the containerd test drives the CRI with, from the Go module
# proxy (cri-tools is not packaged by Debian).
crictl=/var/tmp/berth-tools/crictl-v1.37.0/crictl
if [ ! -x "$crictl" ]; then
	(cd / && GOBIN=$(dirname "$crictl") go install sigs.k8s.io/cri-tools/cmd/crictl@v1.37.0)
fi
# critest, cri-tools' CRI validation suite (a Go test binary, built from
# the module's source as its Makefile does: go test -c ./cmd/critest).
critest=/var/tmp/berth-tools/critest-v1.37.0/critest
if [ ! -x "$critest" ]; then
	src=$(cd / && go mod download -json sigs.k8s.io/cri-tools@v1.37.0 | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$src" ] || { echo "deps.sh: cri-tools v1.37.0 did not download" >&2; exit 1; }
	mkdir -p "$(dirname "$critest")"
	(cd "$src" && go test -c -o "$critest.tmp" ./cmd/critest)
	mv "$critest.tmp" "$critest"
fi
