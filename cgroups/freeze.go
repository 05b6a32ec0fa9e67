package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-project/berth/errdefs"
)

// freezeTimeout bounds how long Freeze waits for every task to stop.
const freezeTimeout = 5 * time.Second

// Freeze stops (freeze true) or thaws every process in the cgroup and
// waits until the kernel reports the new state.
func (m *v1) Freeze(freeze bool) error {
	d, ok := m.paths["freezer"]
	if !ok {
		return fmt.Errorf("pause: the freezer cgroup controller is not mounted: %w", errdefs.ErrUnavailable)
	}
	want := "THAWED"
	if freeze {
		want = "FROZEN"
	}
	deadline := time.Now().Add(freezeTimeout)
	for {
		// Writing again while FREEZING is how v1 is nudged along.
		if err := writeFile(d, "freezer.state", want); err != nil {
			return err
		}
		b, err := os.ReadFile(filepath.Join(d, "freezer.state"))
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(b)) == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s: still %s after %v", d, strings.TrimSpace(string(b)), freezeTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

func (m *v2) Freeze(freeze bool) error {
	v, want := "0", "frozen 0"
	if freeze {
		v, want = "1", "frozen 1"
	}
	if err := writeFile(m.dir, "cgroup.freeze", v); err != nil {
		return err
	}
	deadline := time.Now().Add(freezeTimeout)
	for {
		b, err := os.ReadFile(filepath.Join(m.dir, "cgroup.events"))
		if err != nil {
			return err
		}
		if strings.Contains(string(b), want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s: not %q after %v", m.dir, want, freezeTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}
