package systemd

import (
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/errdefs"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]Unit{
		"system.slice:docker:abc": {Name: "docker-abc.scope", Slice: "system.slice", Path: "/system.slice/docker-abc.scope"},
		":cri-containerd:abc":     {Name: "cri-containerd-abc.scope", Slice: "system.slice", Path: "/system.slice/cri-containerd-abc.scope"},
		"kubepods-besteffort-pod1.slice:cri-containerd:abc": {Name: "cri-containerd-abc.scope", Slice: "kubepods-besteffort-pod1.slice",
			Path: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-abc.scope"},
		"-.slice::abc":               {Name: "abc.scope", Slice: "-.slice", Path: "/abc.scope"},
		"kubepods.slice::pod2.slice": {Name: "pod2.slice", Slice: "kubepods.slice", Path: "/kubepods.slice/pod2.slice"},
		"":                           {Name: "berth-id1.scope", Slice: "system.slice", Path: "/system.slice/berth-id1.scope"},
	} {
		got, err := Parse(in, "id1")
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"/berth/abc", "a:b", "a:b:c:d", "nota-slice:p:n", "system.slice:p:", "a--b.slice:p:n", "x.slice:p:a/b"} {
		if _, err := Parse(bad, "id1"); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("Parse(%q): %v, want an invalid-argument error", bad, err)
		}
	}
}

func TestResourceProps(t *testing.T) {
	mem, shares, quota := int64(64<<20), uint64(1024), int64(25000)
	r := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &mem}, Pids: &specs.LinuxPids{Limit: 9},
		CPU: &specs.LinuxCPU{Shares: &shares, Quota: &quota}}
	got := map[string]any{}
	for _, p := range resourceProps(r, false) {
		got[p.Name] = p.Value.Value()
	}
	want := map[string]any{"MemoryLimit": uint64(64 << 20), "TasksMax": uint64(9), "CPUShares": uint64(1024), "CPUQuotaPerSecUSec": uint64(250000)}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("v1 %s = %v, want %v", k, got[k], v)
		}
	}
	got = map[string]any{}
	for _, p := range resourceProps(r, true) {
		got[p.Name] = p.Value.Value()
	}
	if got["MemoryMax"] != uint64(64<<20) || got["CPUWeight"] != uint64(39) {
		t.Errorf("v2: %v", got)
	}
}
