package storage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/storage/quota/quotatest"
)

// TestSizedRootfsOnEveryBackend: a container rootfs (overlay over a
// writable layer limited by the host's backend) takes its limit, within
// 1%, through the overlay, then fails with ENOSPC or EDQUOT; removing the
// snapshot leaves nothing.
func TestSizedRootfsOnEveryBackend(t *testing.T) {
	const limit = 32 << 20
	for name, root := range quotatest.Roots(t) {
		t.Run(name, func(t *testing.T) {
			s, err := Open(filepath.Join(root, "storage"))
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.SplitN(name, ":", 2)[0]; !strings.Contains(s.QuotaBackend(), want) {
				t.Fatalf("backend %q on %s, want %s", s.QuotaBackend(), root, want)
			}
			if err := s.PrepareSized("c1", nil, limit); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(root, "rootfs")
			if err := os.Mkdir(target, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := s.Mount("c1", target); err != nil {
				t.Fatal(err)
			}
			n, ferr := quotatest.Fill(target)
			if err := Unmount(target); err != nil {
				t.Fatal(err)
			}
			if !quotatest.IsQuotaErr(ferr) {
				t.Errorf("writing past the limit: %v", ferr)
			}
			if d := n - limit; d > limit/100 || d < -limit/100 {
				t.Errorf("%d bytes through the overlay under a %d-byte limit", n, limit)
			}
			t.Logf("%s: %d bytes of %d (%+.2f%%)", s.QuotaBackend(), n, limit, 100*float64(n-limit)/limit)
			if used, err := s.Usage("c1"); err != nil || used != n {
				t.Errorf("Usage = %d, %v; want the %d bytes written", used, err, n)
			}
			if err := s.Remove("c1"); err != nil {
				t.Fatal(err)
			}
			if keys, _ := s.Snapshots(); len(keys) != 0 {
				t.Errorf("snapshots left: %v", keys)
			}
		})
	}
}
