// Package registry runs a real OCI registry for tests — Debian's
// docker-registry (the CNCF distribution registry) on 127.0.0.1 with its
// storage in a temporary directory — and builds test images to push into
// it with go-containerregistry.
package registry

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// Registry is one running registry.
type Registry struct {
	// Host is "127.0.0.1:port".
	Host string
	// Dir is the registry's storage root.
	Dir    string
	cmd    *exec.Cmd
	auth   *authn.Basic
	tokens *tokenServer
}

// Options for Start.
type Options struct {
	// User and Password, when set, turn on auth: htpasswd (basic) auth,
	// or with Token, bearer tokens from a token server (tokens.go).
	User, Password string
	Token          bool
}

// Start runs a registry for the test and stops it when the test ends.
// Skips the test (with the reason) if docker-registry is not installed.
func Start(t testing.TB, o Options) *Registry {
	t.Helper()
	if _, err := exec.LookPath("docker-registry"); err != nil {
		t.Skip("docker-registry is not installed (Debian package docker-registry; scripts/deps.sh installs it)")
	}
	r, err := Run(t.TempDir(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// Run starts a registry with its configuration and storage under dir, on
// a free loopback port, and waits until it answers. The caller stops it.
func Run(dir string, o Options) (*Registry, error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		return nil, fmt.Errorf("docker-registry is not installed: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	host := l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
validation:
  manifests:
    urls:
      allow:
        - ^https?://
`, filepath.Join(dir, "data"), host)
	r := &Registry{Host: host, Dir: filepath.Join(dir, "data")}
	if o.User != "" && o.Token {
		ts, err := startTokenServer(dir, o.User, o.Password)
		if err != nil {
			return nil, err
		}
		r.tokens = ts
		cfg += ts.config()
		r.auth = &authn.Basic{Username: o.User, Password: o.Password}
	} else if o.User != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(o.Password), bcrypt.MinCost)
		if err != nil {
			return nil, err
		}
		pw := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(pw, []byte(o.User+":"+string(hash)+"\n"), 0o600); err != nil {
			return nil, err
		}
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: berth-test\n    path: %s\n", pw)
		r.auth = &authn.Basic{Username: o.User, Password: o.Password}
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	var logs bytes.Buffer
	r.cmd = exec.Command(bin, "serve", cfgPath)
	r.cmd.Stdout, r.cmd.Stderr = &logs, &logs
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			return r, nil
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("registry on %s did not come up: %v\n%s", host, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop ends the registry process (the one Start made, by its PID).
func (r *Registry) Stop() {
	if r.tokens != nil {
		r.tokens.srv.Close()
	}
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// Ref is "host/repo" for a repository in this registry.
func (r *Registry) Ref(repo string) string { return r.Host + "/" + repo }

func (r *Registry) opts() []remote.Option {
	if r.auth != nil {
		return []remote.Option{remote.WithAuth(r.auth)}
	}
	return nil
}

// Push writes an image or an image index under ref ("repo:tag") and
// returns its digest.
func (r *Registry) Push(t testing.TB, ref string, obj interface {
	remote.Taggable
	Digest() (v1.Hash, error)
}) v1.Hash {
	t.Helper()
	tag, err := name.NewTag(r.Ref(ref))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Push(tag, obj, r.opts()...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := obj.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// BlobPath is where the registry keeps a blob's data on disk, for tests
// that corrupt or truncate it.
func (r *Registry) BlobPath(d v1.Hash) string {
	return filepath.Join(r.Dir, "docker", "registry", "v2", "blobs", d.Algorithm, d.Hex[:2], d.Hex, "data")
}

// Entry is one member of a test tar.
type Entry struct {
	Name     string
	Type     byte   // tar.TypeReg when zero
	Body     string // file content
	Linkname string
	Mode     int64
	Uid, Gid int
	Xattrs   map[string]string
	Size     int64 // overrides len(Body) in the header, for truncated files
}

// HugePAXTar is a tar whose first entry carries an extended (PAX) header
// of size bytes — more than any sane reader accepts — written by hand, as
// Go's tar writer refuses to.
func HugePAXTar(size int) []byte {
	rec := " user.big=" + strings.Repeat("h", size)
	rec = fmt.Sprintf("%d%s\n", len(rec)+1+len(fmt.Sprint(len(rec)+1)), rec)
	body := []byte(rec)
	hdr := make([]byte, 512)
	copy(hdr, "PaxHeaders/big")
	copy(hdr[100:], "0000644\x00")
	copy(hdr[108:], "0000000\x00")
	copy(hdr[116:], "0000000\x00")
	copy(hdr[124:], fmt.Sprintf("%011o\x00", len(body)))
	copy(hdr[136:], "00000000000\x00")
	hdr[156] = 'x'
	copy(hdr[257:], "ustar\x0000")
	copy(hdr[148:], "        ")
	sum := 0
	for _, b := range hdr {
		sum += int(b)
	}
	copy(hdr[148:], fmt.Sprintf("%06o\x00 ", sum))
	out := append(hdr, body...)
	out = append(out, make([]byte, (512-len(body)%512)%512)...)
	return append(out, make([]byte, 1024)...)
}

// Tar builds an uncompressed tar from entries.
func Tar(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Typeflag: e.Type, Linkname: e.Linkname, Mode: e.Mode, Uid: e.Uid, Gid: e.Gid, ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
			if e.Size != 0 {
				h.Size = e.Size
			}
		}
		for k, v := range e.Xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar header %s: %v", e.Name, err)
		}
		if _, err := io.WriteString(tw, e.Body); err != nil && e.Size == 0 {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil && !strings.Contains(err.Error(), "missed writing") {
		t.Fatal(err)
	}
	return buf.Bytes()
}
