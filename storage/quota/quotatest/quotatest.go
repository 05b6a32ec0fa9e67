// Package quotatest gives tests a directory on every quota backend this
// machine (or the cgroup v2 guest of test/vm) can offer, and a way to
// measure a limit by writing until it fails.
package quotatest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// PquotaEnv lists directories, colon-separated, on filesystems mounted
// with project quotas (set by test/vm's guest for its XFS and ext4 disks).
const PquotaEnv = "BERTH_TEST_PQUOTA_DIRS"

// Roots returns, by backend, an empty directory for the test to limit
// directories under:
//
//	"loop"                      a temporary directory, if mkfs.ext4 is
//	                            installed (the v2 guest has none)
//	"btrfs"                     a loop-mounted btrfs made for the test, if
//	                            the kernel and mkfs.btrfs allow
//	"project:/mnt/xfs", ...     one per PquotaEnv entry
//
// Everything is removed when the test ends. It needs root.
func Roots(t *testing.T) map[string]string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: loop mounts and quotas")
	}
	roots := map[string]string{}
	if _, err := exec.LookPath("mkfs.ext4"); err == nil {
		roots["loop"] = t.TempDir()
	} else {
		t.Log("no mkfs.ext4: loop backend not tested")
	}
	if dir, ok := Btrfs(t); ok {
		roots["btrfs"] = dir
	}
	for _, d := range strings.Split(os.Getenv(PquotaEnv), ":") {
		if d == "" {
			continue
		}
		dir, err := os.MkdirTemp(d, "quotatest-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		roots["project:"+d] = dir
	}
	return roots
}

// Btrfs mounts a new 1 GiB btrfs (a sparse image on a loop device) for
// the test and returns its mount point, unmounted when the test ends; false
// if the kernel or mkfs.btrfs is missing.
func Btrfs(t *testing.T) (string, bool) {
	fss, _ := os.ReadFile("/proc/filesystems")
	if !strings.Contains(string(fss), "\tbtrfs\n") {
		return "", false
	}
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		t.Log("no mkfs.btrfs (Debian's btrfs-progs): btrfs backend not tested")
		return "", false
	}
	tmp := t.TempDir()
	img, dir := filepath.Join(tmp, "btrfs.img"), filepath.Join(tmp, "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(1 << 30)
	f.Close()
	if out, err := exec.Command("mkfs.btrfs", "-q", "-f", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
		t.Fatalf("mount btrfs: %v: %s", err, out)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir, true
}

// Fill writes 1 MiB blocks into a new file in dir until a write or an
// fsync fails, and returns the bytes written and the error, which should
// be ENOSPC or EDQUOT. It writes as a container would: without
// CAP_SYS_RESOURCE, with which root may pass ext4's quota limits.
func Fill(dir string) (int64, error) {
	type result struct {
		n   int64
		err error
	}
	ch := make(chan result)
	go func() {
		// The thread keeps its lowered capabilities and ends with this
		// goroutine: it is never unlocked.
		runtime.LockOSThread()
		if err := dropSysResource(); err != nil {
			ch <- result{0, err}
			return
		}
		n, err := fill(dir)
		ch <- result{n, err}
	}()
	r := <-ch
	return r.n, r.err
}

// dropSysResource removes CAP_SYS_RESOURCE from the calling thread's
// effective set.
func dropSysResource() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[unix.CAP_SYS_RESOURCE/32].Effective &^= 1 << (unix.CAP_SYS_RESOURCE % 32)
	return unix.Capset(&hdr, &data[0])
}

func fill(dir string) (int64, error) {
	f, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i*7 + 1) // not zeros: no filesystem may skip them
	}
	var total int64
	for {
		n, err := f.Write(buf)
		total += int64(n)
		if err != nil {
			return total, err
		}
		if total > 1<<40 {
			return total, errors.New("no limit after 1 TiB")
		}
		if total%(64<<20) == 0 {
			// Delayed allocation reports the limit at writeback.
			if err := f.Sync(); err != nil {
				return total, err
			}
		}
	}
}

// IsQuotaErr reports whether err is what a write past a limit gives.
func IsQuotaErr(err error) bool {
	return errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT)
}
