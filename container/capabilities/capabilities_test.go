package capabilities

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParse(t *testing.T) {
	for name, want := range map[string]int{"CAP_CHOWN": 0, "cap_sys_admin": 21, "NET_RAW": 13, "CAP_CHECKPOINT_RESTORE": 40} {
		n, _, err := Parse(name)
		if err != nil || n != want {
			t.Errorf("%s → %d %v, want %d", name, n, err, want)
		}
	}
	if _, _, err := Parse("CAP_BOGUS"); err == nil {
		t.Error("unknown capability accepted")
	}
}

func TestFromSpec(t *testing.T) {
	s, err := FromSpec(&specs.LinuxCapabilities{Bounding: []string{"CAP_KILL", "CAP_AUDIT_WRITE"}, Ambient: []string{"CAP_NET_RAW"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Bounding != 1<<5|1<<29 || s.Ambient != 1<<13 || s.Effective != 0 {
		t.Errorf("%+v", s)
	}
}
