package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// tlsOptions are dockerd's: --tls serves TCP over TLS with --tlscert and
// --tlskey; --tlsverify (implies --tls) also requires client
// certificates signed by --tlscacert. Unset paths default to
// $DOCKER_CERT_PATH or ~/.docker, as dockerd's.
type tlsOptions struct {
	TLS       *bool  `json:"tls,omitempty"`
	TLSVerify bool   `json:"tlsverify,omitempty"`
	CACert    string `json:"tlscacert,omitempty"`
	Cert      string `json:"tlscert,omitempty"`
	Key       string `json:"tlskey,omitempty"`
}

func (o tlsOptions) enabled() bool { return o.TLSVerify || o.TLS != nil && *o.TLS }

func certDir() string {
	if d := os.Getenv("DOCKER_CERT_PATH"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".docker")
}

// serverConfig loads the certificates; nil when TLS is off. A missing
// or bad file is an error naming it.
func (o tlsOptions) serverConfig() (*tls.Config, error) {
	if !o.enabled() {
		return nil, nil
	}
	pick := func(p, def string) string {
		if p != "" {
			return p
		}
		return filepath.Join(certDir(), def)
	}
	certFile, keyFile := pick(o.Cert, "cert.pem"), pick(o.Key, "key.pem")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tlscert %s / --tlskey %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if o.TLSVerify {
		caFile := pick(o.CACert, "ca.pem")
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--tlscacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tlscacert %s: no PEM certificate in it", caFile)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// tcpWarnings are dockerd's words for a TCP socket that anyone who
// reaches it may use as root: without --tlsverify, every client is
// accepted; without TLS, the traffic is also in clear.
func tcpWarnings(hosts []string, o tlsOptions) []string {
	var out []string
	for _, h := range hosts {
		proto, addr, _ := strings.Cut(h, "://")
		if proto != "tcp" || o.TLSVerify {
			continue
		}
		hostPart, _, _ := net.SplitHostPort(addr)
		ip := net.ParseIP(hostPart)
		scheme := "http"
		if o.enabled() {
			scheme = "https"
		}
		w := fmt.Sprintf("WARNING: API is accessible on %s://%s without encryption.\n         Access to the remote API is equivalent to root access on the host. Refer\n         to the 'Docker daemon attack surface' section in the documentation for\n         more information: https://docs.docker.com/go/attack-surface/", scheme, addr)
		if o.enabled() {
			w = fmt.Sprintf("WARNING: API is accessible on %s://%s without client certificates (--tlsverify):\n         anyone who reaches it has root access on the host.", scheme, addr)
		}
		if ip == nil || !ip.IsLoopback() || o.enabled() {
			out = append(out, w)
		} else {
			out = append(out, fmt.Sprintf("WARNING: API is accessible on %s://%s without encryption: every local user has root access on the host through it.", scheme, addr))
		}
	}
	return out
}
