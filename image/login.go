package image

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-project/berth/errdefs"
)

// Login checks credentials against a registry, as docker login asks the
// daemon to: the registry's /v2/ must answer 200 to them (basic auth, or
// a bearer token the registry's token server grants for them). server is
// what the CLI sends ("localhost:5000", "https://index.docker.io/v1/").
func (s *Store) Login(ctx context.Context, server string, cfg authn.AuthConfig) error {
	host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://"), "/")
	host, _, _ = strings.Cut(host, "/")
	if host == "" || host == "index.docker.io" || host == "registry-1.docker.io" {
		host = dockerHub
	}
	var opts []name.Option
	if slices.Contains(s.opts.InsecureRegistries, host) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, opts...)
	if err != nil {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid registry %q: %v", server, err))
	}
	tr := s.opts.Transport
	if tr == nil {
		tr = remote.DefaultTransport
	}
	rt, err := transport.NewWithContext(ctx, reg, authn.FromConfig(cfg), tr, []string{reg.Scope(transport.PullScope)})
	if err != nil {
		return loginError(reg, err)
	}
	u := fmt.Sprintf("%s://%s/v2/", reg.Scheme(), reg.RegistryStr())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return loginError(reg, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errdefs.New(errdefs.ErrUnauthorized, fmt.Sprintf("login attempt to %s failed with status: %d %s", u, resp.StatusCode, http.StatusText(resp.StatusCode)))
	}
	return nil
}

func loginError(reg name.Registry, err error) error {
	if terr, ok := err.(*transport.Error); ok && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden) {
		return errdefs.New(errdefs.ErrUnauthorized, fmt.Sprintf("login to %s: unauthorized: incorrect username or password", reg.RegistryStr()))
	}
	return fmt.Errorf("login to %s: %v: %w", reg.RegistryStr(), err, errdefs.ErrUnavailable)
}
