package image

import (
	"testing"

	"github.com/berth-project/berth/errdefs"
)

func TestReferences(t *testing.T) {
	cases := []struct{ in, full, familiar string }{
		{"busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"library/busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"},
		{"docker.io/me/app:v2", "docker.io/me/app:v2", "me/app:v2"},
		{"localhost:5000/app@sha256:" + sixtyFour, "localhost:5000/app@sha256:" + sixtyFour, "localhost:5000/app@sha256:" + sixtyFour},
		{"quay.io/org/tool", "quay.io/org/tool:latest", "quay.io/org/tool:latest"},
	}
	for _, tc := range cases {
		r, err := parseRef(tc.in, nil)
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if got := fullName(r); got != tc.full {
			t.Errorf("%s: full name %q, want %q", tc.in, got, tc.full)
		}
		if got := Familiar(fullName(r)); got != tc.familiar {
			t.Errorf("%s: familiar %q, want %q", tc.in, got, tc.familiar)
		}
	}
	for _, bad := range []string{"", "UPPER/case", "a:b:c", "app@sha256:short"} {
		if _, err := parseRef(bad, nil); !errdefs.Invalid(err) {
			t.Errorf("%q: %v, want invalid", bad, err)
		}
	}
	// Plain HTTP only for loopback and the configured insecure registries.
	for host, want := range map[string]string{"registry.example:5000": "https", "127.0.0.1:5000": "http", "insecure.example:5000": "http"} {
		r, err := parseRef(host+"/app", []string{"insecure.example:5000"})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.Context().Registry.Scheme(); got != want {
			t.Errorf("%s: scheme %s, want %s", host, got, want)
		}
	}
}

const sixtyFour = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
