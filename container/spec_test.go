package container

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func withRoot(s *specs.Spec, bundle string) *specs.Spec {
	s.Root.Path = filepath.Join(bundle, "rootfs")
	return s
}

func TestValidateID(t *testing.T) {
	for _, ok := range []string{"a", "abc-1.2_3+x", "9"} {
		if err := ValidateID(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden", "a b", "-x"} {
		if err := ValidateID(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestLoadSpecErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadSpec(dir); err == nil || !strings.Contains(err.Error(), "config.json: no such file") {
		t.Errorf("missing config: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte("{"), 0o644)
	if _, err := LoadSpec(dir); err == nil || !strings.Contains(err.Error(), "malformed JSON") {
		t.Errorf("malformed: %v", err)
	}
	os.MkdirAll(filepath.Join(dir, "rootfs"), 0o755)
	for version, ok := range map[string]bool{"1.0.0": true, "1.2.1": true, "1.3.0": true, "1.0.2-dev": true, "2.0.0": false, "0.5.0": false, "x": false, "1.2": false, "1.2.3.4": false, "1.a.0": false} {
		s := DefaultSpec(false)
		s.Version = version
		if err := Validate(withRoot(s, dir)); (err == nil) != ok {
			t.Errorf("version %s: %v", version, err)
		}
	}
}
