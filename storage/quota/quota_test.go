package quota_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/storage/quota"
	"github.com/berth-project/berth/storage/quota/quotatest"
)

// TestLimitOnEveryBackend: on each backend the host has, a limited
// directory takes the limit's bytes (within 1%) and then fails with
// ENOSPC or EDQUOT, and Remove leaves nothing: no directory, image, mount
// or subvolume, and the space is free for the next directory.
func TestLimitOnEveryBackend(t *testing.T) {
	const limit = 48 << 20
	for name, root := range quotatest.Roots(t) {
		t.Run(name, func(t *testing.T) {
			b := quota.Detect(root)
			want := strings.SplitN(name, ":", 2)[0]
			if !strings.Contains(b.Name(), want) {
				t.Fatalf("Detect on %s chose %q, want the %s backend", root, b.Name(), want)
			}
			for round := range 2 {
				home := filepath.Join(root, "v")
				if err := os.Mkdir(home, 0o700); err != nil {
					t.Fatal(err)
				}
				dir := filepath.Join(home, "data")
				if err := b.Create(dir, limit); err != nil {
					t.Fatal(err)
				}
				n, err := quotatest.Fill(dir)
				if !quotatest.IsQuotaErr(err) {
					t.Errorf("writing past the limit: %v, want ENOSPC or EDQUOT", err)
				}
				if d := n - limit; d > limit/100 || d < -limit/100 {
					t.Errorf("round %d: %d bytes written under a %d-byte limit (%.2f%%)", round, n, limit, 100*float64(d)/limit)
				}
				t.Logf("%s round %d: %d bytes of %d (%+.2f%%)", b.Name(), round, n, limit, 100*float64(n-limit)/limit)
				if err := quota.Remove(dir); err != nil {
					t.Fatal(err)
				}
				if ents, _ := os.ReadDir(home); len(ents) != 0 {
					t.Errorf("left behind in %s: %v", home, ents)
				}
				if err := os.Remove(home); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestBadSize(t *testing.T) {
	for name, root := range quotatest.Roots(t) {
		err := quota.Detect(root).Create(filepath.Join(root, "small"), 1<<20)
		if err == nil || !strings.Contains(err.Error(), "below the smallest quota") {
			t.Errorf("%s: 1 MiB limit: %v", name, err)
		}
		err = quota.Detect(root).Create(filepath.Join(root, "huge"), 1<<62)
		if err == nil || !strings.Contains(err.Error(), "larger than the filesystem") {
			t.Errorf("%s: 4 EiB limit: %v", name, err)
		}
		for _, d := range []string{"small", "huge"} {
			if _, err := os.Stat(filepath.Join(root, d)); err == nil {
				t.Errorf("%s: a refused limit left its directory", name)
			}
		}
	}
}

func TestRemoveMissing(t *testing.T) {
	if err := quota.Remove(filepath.Join(t.TempDir(), "nothing")); err != nil {
		t.Error(err)
	}
}
