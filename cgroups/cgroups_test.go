package cgroups

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestConversions(t *testing.T) {
	for shares, weight := range map[uint64]uint64{0: 0, 2: 1, 1024: 39, 262144: 10000} {
		if got := ConvertSharesToWeight(shares); got != weight {
			t.Errorf("shares %d → weight %d, want %d", shares, got, weight)
		}
	}
	for w, want := range map[uint16]uint64{0: 0, 10: 1, 1000: 10000, 500: 4950} {
		if got := ConvertBlkIOToIOWeight(w); got != want {
			t.Errorf("blkio %d → io %d, want %d", w, got, want)
		}
	}
}

func TestDeviceRule(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	for _, c := range []struct {
		r    specs.LinuxDeviceCgroup
		want string
	}{
		{specs.LinuxDeviceCgroup{Access: "rwm"}, "a *:* rwm"},
		{specs.LinuxDeviceCgroup{Type: "c", Major: i(1), Minor: i(3), Access: "rw"}, "c 1:3 rw"},
		{specs.LinuxDeviceCgroup{Type: "c", Major: i(136), Access: "rwm"}, "c 136:* rwm"},
		{specs.LinuxDeviceCgroup{Type: "b", Major: i(-1), Minor: i(-1)}, "b *:* rwm"},
	} {
		if got := DeviceRule(c.r); got != c.want {
			t.Errorf("%+v → %q, want %q", c.r, got, c.want)
		}
	}
}

func TestValidateNamesTheField(t *testing.T) {
	neg := int64(-7)
	big := uint64(1 << 20)
	for field, r := range map[string]*specs.LinuxResources{
		"linux.resources.memory.limit": {Memory: &specs.LinuxMemory{Limit: &neg}},
		"linux.resources.cpu.shares":   {CPU: &specs.LinuxCPU{Shares: &big}},
		"linux.resources.devices":      {Devices: []specs.LinuxDeviceCgroup{{Type: "x"}}},
	} {
		err := validate(r)
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
}

func TestNewRefusesDotDot(t *testing.T) {
	if _, err := New("/a/../../b", "x"); err == nil {
		t.Error("path with .. accepted")
	}
}
