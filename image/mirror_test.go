package image

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

func TestParseMirror(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:5000":                 "index.docker.io http://127.0.0.1:5000",
		"docker.io=https://mirror.local":        "index.docker.io https://mirror.local",
		"registry.k8s.io=http://127.0.0.1:5000": "registry.k8s.io http://127.0.0.1:5000",
	} {
		h, u, err := ParseMirror(in)
		if err != nil || h+" "+u.String() != want {
			t.Errorf("ParseMirror(%q) = %s %v %v, want %s", in, h, u, err, want)
		}
	}
	for _, bad := range []string{"127.0.0.1:5000", "x=ftp://a", "x=http://", "x=http://a/v2"} {
		if _, _, err := ParseMirror(bad); err == nil {
			t.Errorf("ParseMirror(%q) accepted", bad)
		}
	}
}

// A mirrored host's requests reach the mirror with their paths; others
// are untouched.
func TestMirrorTransport(t *testing.T) {
	mirror := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "mirror "+r.URL.Path) }))
	defer mirror.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "other "+r.URL.Path) }))
	defer other.Close()
	mu, _ := url.Parse(mirror.URL)
	c := &http.Client{Transport: MirrorTransport(http.DefaultTransport, map[string]*url.URL{"registry.k8s.io": mu})}
	for u, want := range map[string]string{"https://registry.k8s.io/v2/pause/manifests/3.9": "mirror /v2/pause/manifests/3.9", other.URL + "/v2/": "other /v2/"} {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != want {
			t.Errorf("GET %s: %q, want %q", u, b, want)
		}
	}
}
