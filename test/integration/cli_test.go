package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/test/harness"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

func TestSpecTemplateRuns(t *testing.T) {
	b := harness.NewBundle(t)
	os.Remove(filepath.Join(b.Dir, "config.json"))
	b.MustRuntime("spec")
	if r := b.Runtime("spec"); r.Code == 0 || !strings.Contains(r.Stderr, "exists") {
		t.Errorf("spec over an existing config.json: %s", r)
	}
	s, err := container.LoadSpec(b.Dir)
	if err != nil {
		t.Fatalf("the template does not load: %v", err)
	}
	if !s.Process.Terminal || s.Process.Args[0] != "sh" {
		t.Errorf("template process %+v", s.Process)
	}
	rootless := filepath.Join(b.Dir, "rootless")
	os.MkdirAll(filepath.Join(rootless, "rootfs"), 0o755)
	b.MustRuntime("spec", "--rootless", "--bundle", rootless)
	rs, err := container.LoadSpec(rootless)
	if err != nil || len(rs.Linux.UIDMappings) != 1 {
		t.Errorf("rootless template: %v %+v", err, rs)
	}
}

func TestFeatures(t *testing.T) {
	b := harness.NewBundle(t)
	var f features.Features
	if err := json.Unmarshal([]byte(b.MustRuntime("features").Stdout), &f); err != nil {
		t.Fatal(err)
	}
	if f.OCIVersionMin != "1.0.0" || f.OCIVersionMax == "" || len(f.Hooks) != 6 || f.Linux == nil || len(f.Linux.Namespaces) != 8 {
		t.Errorf("features %+v", f)
	}
	if f.Linux.Cgroup == nil || !*f.Linux.Cgroup.V1 || !*f.Linux.Cgroup.V2 || !*f.Linux.Cgroup.Systemd || *f.Linux.Cgroup.SystemdUser {
		t.Errorf("cgroup features %+v", f.Linux.Cgroup)
	}
	if m := f.Linux.MountExtensions; m == nil || m.IDMap == nil || !*m.IDMap.Enabled || !slices.Contains(f.MountOptions, "idmap") || !slices.Contains(f.MountOptions, "ridmap") {
		t.Errorf("idmapped mounts not in the features: %+v %v", f.Linux.MountExtensions, f.MountOptions)
	}
}
