package image

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ParseMirror reads a --registry-mirror value: "URL" mirrors Docker Hub
// (docker.io's registry, as dockerd's flag), "HOST=URL" the registry HOST
// (registry.k8s.io=http://127.0.0.1:5000, as containerd's hosts.toml).
// It returns the registry host requests are sent to and the mirror.
func ParseMirror(v string) (host string, mirror *url.URL, err error) {
	host, raw, ok := strings.Cut(v, "=")
	if !ok {
		host, raw = "index.docker.io", v
	}
	if host == "docker.io" {
		host = "index.docker.io"
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return "", nil, fmt.Errorf("--registry-mirror %q: want URL or HOST=URL, the URL as http(s)://host[:port]", v)
	}
	return host, u, nil
}

// MirrorTransport sends the requests for each mirrored registry host to
// its mirror instead (same paths: a mirror serves the registry API for the
// same repositories), and the rest through base.
func MirrorTransport(base http.RoundTripper, mirrors map[string]*url.URL) http.RoundTripper {
	if len(mirrors) == 0 {
		return base
	}
	return &mirrorTransport{base: base, mirrors: mirrors}
}

type mirrorTransport struct {
	base    http.RoundTripper
	mirrors map[string]*url.URL
}

func (m *mirrorTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	to, ok := m.mirrors[req.URL.Host]
	if !ok {
		return m.base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	r.URL.Scheme, r.URL.Host, r.Host = to.Scheme, to.Host, to.Host
	return m.base.RoundTrip(r)
}
