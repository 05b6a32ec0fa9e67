#!/usr/bin/env bash
# test/vm/run.sh: run Berth's kernel-facing tests inside a guest Linux with
# cgroup v2 (every controller delegated) and XFS/ext4 project quotas — what
# this host's hybrid cgroups and quota-less kernel cannot show.
#
#   test/vm/run.sh [test binary flags, e.g. -test.run 'Cgroup|Quota']
#
# The guest is Debian's cloud kernel, fetched with `apt-get download` and
# unpacked into the cache (never installed), booted by qemu under TCG (this
# kind of machine's /dev/kvm is a nested shim on which qemu's KVM mode
# fails). Its initramfs holds busybox-static, the kernel modules the tests
# need, berth-runtime, the checker and the test binaries of GUEST_PKGS, all
# built statically here. The guest runs every test binary once and reports
# its exit status on a second serial port; the output is the tests' -v log.
#
# Environment: BERTH_VM_CACHE (kernel cache, default /var/tmp/berth-vm),
# BERTH_VM_TIMEOUT (seconds, default 2400), BERTH_VM_SMP (2), BERTH_VM_MEM
# (MiB, 3072).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${BERTH_VM_CACHE:-/var/tmp/berth-vm}
timeout=${BERTH_VM_TIMEOUT:-2400}
# Packages whose tests run in the guest: the runtime's integration tests
# (cgroups among them) and the disk-quota backends.
GUEST_PKGS=(./test/integration ./cgroups ./storage/quota ./storage)
MODULES="overlay loop virtio_pci virtio_blk xfs quota_v2 veth bridge"

export PATH=$PATH:/usr/local/go/bin
need=()
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
command -v busybox >/dev/null || need+=(busybox-static)
command -v mkfs.xfs >/dev/null || need+=(xfsprogs)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v musl-gcc >/dev/null || need+=(musl-tools) # scripts/build.sh
if [ ${#need[@]} -gt 0 ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# 1. The kernel: the package linux-image-cloud-amd64 points at, unpacked
# once per version into the cache.
mkdir -p "$cache"
kpkg() { apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
pkg=$(kpkg)
[ -n "$pkg" ] || { apt-get update -qq; pkg=$(kpkg); }
[ -n "$pkg" ] || { echo "vm: no linux-image-cloud-amd64 in the package index" >&2; exit 1; }
kdir=$cache/$pkg
if [ ! -e "$kdir/.done" ]; then
	rm -rf "$kdir" && mkdir -p "$kdir"
	(cd "$kdir" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null && dpkg -x ./*.deb . && rm -f ./*.deb)
	touch "$kdir/.done"
fi
kver=$(ls "$kdir/lib/modules")
vmlinuz=$kdir/boot/vmlinuz-$kver
[ -e "$kdir/lib/modules/$kver/modules.dep" ] || busybox depmod -b "$kdir" "$kver"

work=$(mktemp -d /var/tmp/berth-vm-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,run,mnt,payload/bin,payload/tests,lib/modules/"$kver"}

# 2. The payload, static so that the guest needs no libraries.
"$repo/scripts/build.sh" "$root/payload/bin" >/dev/null
(cd "$repo" && CGO_ENABLED=0 go build -o "$root/payload/bin/checker" ./test/checker)
for p in "${GUEST_PKGS[@]}"; do
	name=$(basename "$p")
	(cd "$repo" && go test -c -tags netgo,osusergo -ldflags '-extldflags "-static"' -o "$root/payload/tests/$name.test" "$p")
done
printf '%q ' "$@" >"$root/payload/args"

# 3. The initramfs: busybox, the module closure of MODULES, the init.
cp "$(command -v busybox)" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
mdir=$kdir/lib/modules/$kver
for m in $MODULES; do
	line=$(awk -F: -v m="$m" '{n=$1; sub(/.*\//,"",n); sub(/\.ko.*/,"",n); gsub(/-/,"_",n); if (n==m) {print; exit}}' "$mdir/modules.dep")
	if [ -z "$line" ]; then
		grep -q "/$m.ko" "$mdir/modules.builtin" || { echo "vm: kernel module $m not found" >&2; exit 1; }
		continue
	fi
	for f in ${line/:/}; do
		mkdir -p "$root/lib/modules/$kver/$(dirname "$f")"
		cp "$mdir/$f" "$root/lib/modules/$kver/$f"
	done
done
cp "$mdir"/modules.builtin* "$mdir"/modules.order "$root/lib/modules/$kver/"
busybox depmod -b "$root" "$kver"
echo "$MODULES" >"$root/payload/modules"
cp "$repo/test/vm/init" "$root/init"
chmod 755 "$root/init"
(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$work/initrd"

# 4. Disks for the project-quota backends, formatted here (mkfs needs no
# kernel support): vda XFS, vdb ext4 with the project quota feature.
truncate -s 1G "$work/xfs.img" "$work/ext4.img"
mkfs.xfs -q "$work/xfs.img"
mkfs.ext4 -q -F -O quota,project -E quotatype=prjquota "$work/ext4.img"

# 5. Boot. The console is the tests' output; ttyS1 carries the exit status.
: >"$work/status"
set +e
timeout "$timeout" qemu-system-x86_64 -accel tcg,thread=multi,tb-size=512 -cpu max \
	-smp "${BERTH_VM_SMP:-2}" -m "${BERTH_VM_MEM:-3072}" -nodefaults -no-reboot -display none \
	-kernel "$vmlinuz" -initrd "$work/initrd" \
	-append "console=ttyS0 quiet loglevel=3 panic=-1 oops=panic" \
	-serial stdio -serial "file:$work/status" \
	-drive "file=$work/xfs.img,format=raw,if=virtio,cache=unsafe" \
	-drive "file=$work/ext4.img,format=raw,if=virtio,cache=unsafe" </dev/null
qrc=$?
set -e
rc=$(tr -dc 0-9 <"$work/status")
if [ -z "$rc" ]; then
	echo "vm: the guest reported no status (qemu exit $qrc; 124 is the ${timeout}s timeout)" >&2
	exit 125
fi
echo "vm: guest tests exit $rc"
exit "$rc"
