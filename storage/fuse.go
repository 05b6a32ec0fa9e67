package storage

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/mountinfo"
)

// Drivers: how a rootfs overlay is mounted. Overlay is the kernel's
// overlayfs; FuseOverlayfs is fuse-overlayfs (Debian's package), for a
// user namespace whose kernel refuses overlayfs (before Linux 5.11, or
// where a distribution turned it off). Both read the same layers.
const (
	Overlay       = "overlay2"
	FuseOverlayfs = "fuse-overlayfs"
)

// SetDriver chooses how rootfs overlays are mounted: Overlay,
// FuseOverlayfs, or "" to decide here — the kernel's overlayfs unless a
// mount of it is refused and fuse-overlayfs is installed. It returns the
// driver chosen.
func (s *Snapshotter) SetDriver(name string) (string, error) {
	switch name {
	case Overlay, "overlay", "overlayfs":
		s.driver = Overlay
	case FuseOverlayfs:
		if _, err := exec.LookPath("fuse-overlayfs"); err != nil {
			return "", fmt.Errorf("storage driver fuse-overlayfs: the fuse-overlayfs program is not installed (Debian package fuse-overlayfs)")
		}
		s.driver = FuseOverlayfs
	case "":
		s.driver = Overlay
		if err := s.probeOverlay(); err != nil {
			if _, lerr := exec.LookPath("fuse-overlayfs"); lerr != nil {
				return "", fmt.Errorf("the kernel refuses overlayfs here (%v) and fuse-overlayfs is not installed (Debian package fuse-overlayfs)", err)
			}
			s.driver = FuseOverlayfs
		}
	default:
		return "", fmt.Errorf("storage driver %q: overlay2 or fuse-overlayfs", name)
	}
	return s.driver, nil
}

// Driver is the driver SetDriver chose (Overlay before it is called).
func (s *Snapshotter) Driver() string {
	if s.driver == "" {
		return Overlay
	}
	return s.driver
}

// probeOverlay mounts and unmounts an overlay of empty directories with
// the options a rootfs gets.
func (s *Snapshotter) probeOverlay() error {
	tmp, err := s.probeDirs("mnt")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	opts, err := s.overlayOptions("probe", []string{filepath.Join(tmp, "lower")}, tmp)
	if err != nil {
		return err
	}
	if err := unix.Mount("overlay", filepath.Join(tmp, "mnt"), "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay: %w", err)
	}
	return unix.Unmount(filepath.Join(tmp, "mnt"), unix.MNT_DETACH)
}

// probeDirs makes, in layers/tmp, a directory for a probe mount with an
// empty lower, upper and work in it, and the extra ones named; the caller
// removes it.
func (s *Snapshotter) probeDirs(extra ...string) (string, error) {
	tmp, err := os.MkdirTemp(s.tmpDir(), "probe-")
	if err != nil {
		return "", err
	}
	for _, d := range append([]string{"lower", "upper", "work"}, extra...) {
		if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
			os.RemoveAll(tmp)
			return "", err
		}
	}
	return tmp, nil
}

// mountFuse mounts key's rootfs of layer directories dirs (top first) on
// target with fuse-overlayfs. Its process serves the mount until it is
// unmounted; it stays a child of this process, which reaps it then.
func (s *Snapshotter) mountFuse(key, target string, dirs []string, rw string) error {
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(dirs, ":"), filepath.Join(rw, "upper"), filepath.Join(rw, "work"))
	var out strings.Builder
	cmd := exec.Command("fuse-overlayfs", "-f", "-o", opts, target)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mount fuse-overlayfs for %q: %w", key, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if fuseMounted(target) {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("mount fuse-overlayfs for %q on %s: %v: %s", key, target, err, strings.TrimSpace(out.String()))
		case <-time.After(10 * time.Millisecond):
		}
	}
	cmd.Process.Kill()
	return fmt.Errorf("mount fuse-overlayfs for %q on %s: not mounted after 10 s: %s", key, target, strings.TrimSpace(out.String()))
}

// fuseMounted: a fuse-overlayfs file system is mounted at target.
func fuseMounted(target string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options... - fstype source
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if ok && len(fields) > 4 && mountinfo.Unescape(fields[4]) == target && strings.HasPrefix(post, "fuse.fuse-overlayfs ") {
			return true
		}
	}
	return false
}
