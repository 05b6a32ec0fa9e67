package rootfs

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseOptions(t *testing.T) {
	o, err := ParseOptions([]string{"rbind", "ro", "nosuid", "rw", "noexec", "rslave", "rro", "mode=755", "size=1m", "tmpcopyup"})
	if err != nil {
		t.Fatal(err)
	}
	want := uintptr(unix.MS_BIND | unix.MS_REC | unix.MS_NOSUID | unix.MS_NOEXEC)
	if o.Flags != want {
		t.Errorf("flags %#x, want %#x (rw after ro clears MS_RDONLY)", o.Flags, want)
	}
	if len(o.Propagation) != 1 || o.Propagation[0] != unix.MS_SLAVE|unix.MS_REC {
		t.Errorf("propagation %v", o.Propagation)
	}
	if o.SetAttr != unix.MOUNT_ATTR_RDONLY || o.Data != "mode=755,size=1m" {
		t.Errorf("setattr %#x data %q", o.SetAttr, o.Data)
	}
	for opts, want := range map[string]IDMapKind{"rbind": NoIDMap, "rbind,idmap": IDMapTop, "ridmap,rbind": IDMapRecursive} {
		o, err := ParseOptions(strings.Split(opts, ","))
		if err != nil || o.IDMap != want || o.Data != "" {
			t.Errorf("%s: idmap %d (want %d), data %q, %v", opts, o.IDMap, want, o.Data, err)
		}
	}
}

func TestPropagationFlag(t *testing.T) {
	if f, err := PropagationFlag("rshared"); err != nil || f != unix.MS_SHARED|unix.MS_REC {
		t.Errorf("rshared: %#x %v", f, err)
	}
	if _, err := PropagationFlag("sideways"); err == nil {
		t.Error("bad propagation accepted")
	}
}
