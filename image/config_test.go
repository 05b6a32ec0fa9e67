package image

import (
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestRuntimeDefaults(t *testing.T) {
	c := ocispec.ImageConfig{
		Entrypoint: []string{"/entry"}, Cmd: []string{"serve"}, Env: []string{"A=1", "B=2"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}}, Volumes: map[string]struct{}{"/data": {}},
		Labels: map[string]string{"k": "v"},
	}
	cases := []struct {
		name string
		o    Overrides
		args []string
	}{
		{"image's", Overrides{}, []string{"/entry", "serve"}},
		{"cmd replaced", Overrides{Cmd: []string{"x"}}, []string{"/entry", "x"}},
		{"entrypoint drops cmd", Overrides{Entrypoint: []string{"/sh"}}, []string{"/sh"}},
		{"both", Overrides{Entrypoint: []string{"/sh"}, Cmd: []string{"-c", "id"}}, []string{"/sh", "-c", "id"}},
		{"entrypoint cleared", Overrides{Entrypoint: []string{}, Cmd: []string{"ls"}}, []string{"ls"}},
	}
	for _, tc := range cases {
		if d := RuntimeDefaults(c, tc.o); !slices.Equal(d.Args, tc.args) {
			t.Errorf("%s: args %q, want %q", tc.name, d.Args, tc.args)
		}
	}
	d := RuntimeDefaults(c, Overrides{Env: []string{"B=3", "C=4"}, WorkingDir: "/w", User: "1:2"})
	if want := []string{"A=1", "B=3", "C=4", DefaultPath}; !slices.Equal(d.Env, want) {
		t.Errorf("env %q, want %q", d.Env, want)
	}
	if d.Cwd != "/w" || d.User != "1:2" || d.StopSignal != "SIGTERM" || d.Labels["k"] != "v" {
		t.Errorf("defaults %+v", d)
	}
	if !slices.Equal(d.ExposedPorts, []string{"53/udp", "80/tcp"}) || !slices.Equal(d.Volumes, []string{"/data"}) {
		t.Errorf("ports %q volumes %q", d.ExposedPorts, d.Volumes)
	}
	if d := RuntimeDefaults(ocispec.ImageConfig{}, Overrides{}); d.Cwd != "/" || !slices.Equal(d.Env, []string{DefaultPath}) {
		t.Errorf("empty config: %+v", d)
	}
}
