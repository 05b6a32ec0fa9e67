package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/test/harness"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hook writes its stdin (the state) to file, from the host's /bin/sh.
func hook(file string) specs.Hook {
	return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + file}, Env: []string{"PATH=/bin:/usr/bin"}}
}

func TestAllHooksRunWithState(t *testing.T) {
	b := harness.NewBundle(t)
	d := filepath.Join(b.Dir, "hooks")
	os.MkdirAll(d, 0o755)
	b.Spec.Root.Readonly = false
	b.Spec.Hooks = &specs.Hooks{
		//lint:ignore SA1019 the runtime still honours prestart
		Prestart:        []specs.Hook{hook(d + "/prestart")},
		CreateRuntime:   []specs.Hook{hook(d + "/createRuntime")},
		CreateContainer: []specs.Hook{hook(d + "/createContainer")},
		// startContainer runs in the container: its path is the rootfs's.
		StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > /tmp/startContainer"}}},
		Poststart:      []specs.Hook{hook(d + "/poststart")},
		Poststop:       []specs.Hook{hook(d + "/poststop")},
	}
	b.Spec.Process.Args = []string{"true"}
	b.Write()
	b.MustRuntime("create", b.ID)
	pid := b.State().Pid
	for _, h := range []string{"prestart", "createRuntime", "createContainer"} {
		var st specs.State
		data, err := os.ReadFile(filepath.Join(d, h))
		if err != nil || json.Unmarshal(data, &st) != nil {
			t.Errorf("%s hook: no state (%v) %q", h, err, data)
			continue
		}
		want := specs.StateCreating
		if h == "prestart" {
			want = specs.StateCreated
		}
		if st.ID != b.ID || st.Pid != pid || st.Bundle != b.Dir || st.Status != want {
			t.Errorf("%s hook state %+v, want id %s pid %d status %s", h, st, b.ID, pid, want)
		}
	}
	for _, h := range []string{"poststart", "poststop"} {
		if _, err := os.Stat(filepath.Join(d, h)); err == nil {
			t.Errorf("%s ran before its time", h)
		}
	}
	b.MustRuntime("start", b.ID)
	waitStatus(t, b, specs.StateStopped)
	for _, f := range []string{filepath.Join(d, "poststart"), filepath.Join(b.Rootfs, "tmp/startContainer")} {
		if data, err := os.ReadFile(f); err != nil || !strings.Contains(string(data), b.ID) {
			t.Errorf("%s: %v %q", f, err, data)
		}
	}
	b.MustRuntime("delete", b.ID)
	var st specs.State
	if data, err := os.ReadFile(filepath.Join(d, "poststop")); err != nil || json.Unmarshal(data, &st) != nil || st.Status != specs.StateStopped {
		t.Errorf("poststop: %v %+v", err, st)
	}
	b.AssertNothingLeft()
}
