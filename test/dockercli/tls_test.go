package dockercli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/test/berthd"
)

// writeCerts makes a CA, a server certificate for 127.0.0.1 and a client
// certificate, in docker's file names (ca.pem, cert.pem, key.pem) under
// dir/server and dir/client; dir/rogue holds a client pair from another CA.
func writeCerts(t *testing.T, dir string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(path, typ string, der []byte) {
		os.MkdirAll(filepath.Dir(path), 0o700)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	serial := int64(1)
	issue := func(tmpl *x509.Certificate, parent *x509.Certificate, key, parentKey *ecdsa.PrivateKey) []byte {
		serial++
		tmpl.SerialNumber = big.NewInt(serial)
		tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	makeCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		key := newKey()
		der := issue(&x509.Certificate{Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}, nil, key, nil)
		ca, _ := x509.ParseCertificate(der)
		return ca, key, der
	}
	ca, caKey, caDER := makeCA("berth test CA")
	for _, side := range []string{"server", "client"} {
		key := newKey()
		tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: side}, KeyUsage: x509.KeyUsageDigitalSignature}
		if side == "server" {
			tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []net.IP{net.ParseIP("127.0.0.1")}
		} else {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
		write(filepath.Join(dir, side, "cert.pem"), "CERTIFICATE", issue(tmpl, ca, key, caKey))
		kder, _ := x509.MarshalECPrivateKey(key)
		write(filepath.Join(dir, side, "key.pem"), "EC PRIVATE KEY", kder)
		write(filepath.Join(dir, side, "ca.pem"), "CERTIFICATE", caDER)
	}
	rogueCA, rogueKey, _ := makeCA("another CA")
	key := newKey()
	write(filepath.Join(dir, "rogue", "cert.pem"), "CERTIFICATE", issue(&x509.Certificate{Subject: pkix.Name{CommonName: "rogue"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, rogueCA, key, rogueKey))
	kder, _ := x509.MarshalECPrivateKey(key)
	write(filepath.Join(dir, "rogue", "key.pem"), "EC PRIVATE KEY", kder)
	write(filepath.Join(dir, "rogue", "ca.pem"), "CERTIFICATE", caDER)
}

// TestTLSRemoteAPI: -H tcp:// with --tlsverify serves only clients with a
// certificate of the CA; without TLS, docker info carries dockerd's
// warning; a missing certificate stops berthd at start, naming the file.
func TestTLSRemoteAPI(t *testing.T) {
	certs := t.TempDir()
	writeCerts(t, certs)
	srv := filepath.Join(certs, "server")
	d := berthd.StartWith(t, "", "-H", "tcp://127.0.0.1:2376", "--tlsverify",
		"--tlscacert", filepath.Join(srv, "ca.pem"), "--tlscert", filepath.Join(srv, "cert.pem"), "--tlskey", filepath.Join(srv, "key.pem"))
	// The docker CLI in the daemon's network namespace, where its TCP
	// socket is.
	cli := func(env []string, args ...string) (string, error) {
		cmd := exec.Command("busybox", append([]string{"nsenter", "--net=" + d.Netns(), "docker"}, args...)...)
		cmd.Env = append(append(os.Environ(), "DOCKER_HOST=tcp://127.0.0.1:2376", "DOCKER_CONFIG="+filepath.Join(d.Dir, "docker-config")), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := cli([]string{"DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + filepath.Join(certs, "client")}, "version", "--format", "{{.Server.Os}}"); err != nil || strings.TrimSpace(out) != "linux" {
		t.Errorf("client with a certificate of the CA: %v %q", err, out)
	}
	if out, err := cli([]string{"DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + filepath.Join(certs, "rogue")}, "version", "--format", "{{.Server.Os}}"); err == nil {
		t.Errorf("client with a certificate of another CA was served: %q", out)
	}
	if out, err := cli(nil, "version", "--format", "{{.Server.Os}}"); err == nil {
		t.Errorf("plain HTTP client was served: %q", out)
	}
	if out, err := cli([]string{"DOCKER_TLS=1"}, "--tls", "version", "--format", "{{.Server.Os}}"); err == nil {
		t.Errorf("TLS client without a certificate was served: %q", out)
	}
	if out, err := d.Docker("info", "--format", "{{json .Warnings}}"); err != nil || strings.Contains(out, "127.0.0.1:2376") {
		t.Errorf("--tlsverify: no warning expected, got %v %q", err, out)
	}

	plain := berthd.StartWith(t, "", "-H", "tcp://127.0.0.1:2375")
	if out, err := plain.Docker("info"); err != nil || !strings.Contains(out, "WARNING: API is accessible on http://127.0.0.1:2375 without encryption") {
		t.Errorf("TCP without TLS: docker info should warn: %v\n%s", err, out)
	}

	// A missing key: berthd refuses to start and leaves no pidfile.
	dir := t.TempDir()
	cmd := exec.Command(d.Binary(), "-H", "tcp://127.0.0.1:0", "--tlsverify",
		"--tlscacert", filepath.Join(srv, "ca.pem"), "--tlscert", filepath.Join(srv, "cert.pem"), "--tlskey", filepath.Join(dir, "nokey.pem"),
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"), "--pidfile", filepath.Join(dir, "pid"), "--config-file", "/dev/null")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "nokey.pem") {
		t.Errorf("missing --tlskey: want an error naming it: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "pid")); err == nil {
		t.Error("a pidfile was left by the refused start")
	}
}
