package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/test/registry"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: unpacking preserves ownership, whiteouts are device nodes, rootfs is an overlay mount")
	}
}

// openStore opens a store on a fresh data root and checks, when the test
// ends, that it is consistent.
func openStore(t *testing.T, o image.Options) *image.Store {
	t.Helper()
	if o.Root == "" {
		o.Root = t.TempDir()
	}
	s, err := image.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, err := range s.Verify() {
			t.Errorf("store inconsistent: %v", err)
		}
		s.Close()
	})
	return s
}

// mountRootfs prepares and mounts a rootfs for ref and undoes it at the end.
func mountRootfs(t *testing.T, s *image.Store, key, ref string) string {
	t.Helper()
	if _, err := s.PrepareRootfs(key, ref); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := s.MountRootfs(key, dir); err != nil {
		s.RemoveRootfs(key)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
		if err := s.RemoveRootfs(key); err != nil {
			t.Error(err)
		}
	})
	return dir
}

func TestPullRunsFromOverlay(t *testing.T) {
	requireRoot(t)
	reg := registry.Start(t, registry.Options{})
	md := reg.Push(t, "tools/busybox:1.36", registry.Image(t, "amd64", []string{"sh"}, registry.Layer(t, registry.BusyboxTar(t), "gzip")))
	s := openStore(t, image.Options{})

	var progress []image.Progress
	var mu sync.Mutex
	img, err := s.Pull(context.Background(), reg.Ref("tools/busybox:1.36"), image.PullOptions{Progress: func(p image.Progress) {
		mu.Lock()
		progress = append(progress, p)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	if want := reg.Ref("tools/busybox:1.36"); len(img.RepoTags) != 1 || img.RepoTags[0] != want {
		t.Errorf("RepoTags %q, want %q", img.RepoTags, want)
	}
	if want := reg.Ref("tools/busybox@") + md.String(); len(img.RepoDigests) != 1 || img.RepoDigests[0] != want {
		t.Errorf("RepoDigests %q, want %q", img.RepoDigests, want)
	}
	if len(img.Config.Config.Cmd) != 1 || img.Config.Config.Cmd[0] != "sh" || img.Size == 0 {
		t.Errorf("image %+v", img)
	}
	statuses := map[string]bool{}
	for _, p := range progress {
		statuses[p.Status] = true
	}
	for _, want := range []string{"Pulling fs layer", "Downloading", "Download complete", "Pull complete"} {
		if !statuses[want] {
			t.Errorf("no %q progress in %+v", want, progress)
		}
	}
	// The same image by ID, short ID, name@digest.
	for _, ref := range []string{img.ID.String(), img.ID.Encoded()[:12], reg.Ref("tools/busybox@") + md.String()} {
		if got, err := s.Get(ref); err != nil || got.ID != img.ID {
			t.Errorf("Get(%q) = %v, %v", ref, got, err)
		}
	}

	// Pulled by digest: the same image, named by that digest too.
	byDigest := reg.Ref("tools/busybox@") + md.String()
	if again, err := s.Pull(context.Background(), byDigest, image.PullOptions{}); err != nil || again.ID != img.ID || again.Size != img.Size {
		t.Fatalf("pull by digest: %v %v", again, err)
	}
	mountRootfs(t, s, "c1", img.ID.Encoded()[:12])
	root := mountRootfs(t, s, "c2", reg.Ref("tools/busybox:1.36"))
	out, err := exec.Command("chroot", root, "/bin/sh", "-c", "echo hi > /tmp.txt; busybox cat /tmp.txt /etc/passwd").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "hi\nroot:x:0:0") {
		t.Fatalf("running busybox from the overlay: %v: %s", err, out)
	}
	if n, err := s.RootfsUsage("c2"); err != nil || n != 3 {
		t.Errorf("usage of c2 = %d, %v; want 3 bytes", n, err)
	}
}

func TestPullUnknownReferenceFails(t *testing.T) {
	requireRoot(t)
	reg := registry.Start(t, registry.Options{})
	s := openStore(t, image.Options{})
	_, err := s.Pull(context.Background(), reg.Ref("nothing/here:v1"), image.PullOptions{})
	if !errdefs.NotFound(err) || !strings.Contains(err.Error(), "nothing/here:v1") {
		t.Errorf("unknown image: %v", err)
	}
	_, err = s.Get("nothing/here:v1")
	if !errdefs.NotFound(err) {
		t.Errorf("Get of unknown image: %v", err)
	}
}

func TestPullRegistryDown(t *testing.T) {
	requireRoot(t)
	reg := registry.Start(t, registry.Options{})
	reg.Stop()
	s := openStore(t, image.Options{})
	_, err := s.Pull(context.Background(), reg.Ref("app:v1"), image.PullOptions{})
	if !errors.Is(err, errdefs.ErrUnavailable) || !strings.Contains(err.Error(), reg.Host+" is unreachable") {
		t.Errorf("registry down: %v", err)
	}
}

func TestPullWhiteoutsMergeInOverlay(t *testing.T) {
	requireRoot(t)
	reg := registry.Start(t, registry.Options{})
	base := registry.Tar(t,
		registry.Entry{Name: "a/", Type: tar.TypeDir},
		registry.Entry{Name: "a/gone", Body: "x"},
		registry.Entry{Name: "a/kept", Body: "k"},
		registry.Entry{Name: "b/", Type: tar.TypeDir},
		registry.Entry{Name: "b/old", Body: "o"},
		registry.Entry{Name: "owned", Body: "u", Uid: 1234, Gid: 5678, Mode: 0o4750},
		registry.Entry{Name: "hard", Type: tar.TypeLink, Linkname: "owned"},
		registry.Entry{Name: "attr", Body: "a", Xattrs: map[string]string{"user.berth": "yes"}},
	)
	top := registry.Tar(t,
		registry.Entry{Name: "a/.wh.gone"},
		registry.Entry{Name: "b/", Type: tar.TypeDir},
		registry.Entry{Name: "b/.wh..wh..opq"},
		registry.Entry{Name: "b/new", Body: "n"},
	)
	// An OCI manifest (the other images here are Docker schema 2).
	multi := mutate.ConfigMediaType(mutate.MediaType(registry.Image(t, "amd64", nil, registry.Layer(t, base, "gzip"), registry.Layer(t, top, "zstd")), types.OCIManifestSchema1), types.OCIConfigJSON)
	reg.Push(t, "multi:v1", multi)
	s := openStore(t, image.Options{})
	if img, err := s.Pull(context.Background(), reg.Ref("multi:v1"), image.PullOptions{}); err != nil || img.MediaType != string(types.OCIManifestSchema1) {
		t.Fatalf("pull of an OCI image: %v %v", img, err)
	}
	root := mountRootfs(t, s, "w1", reg.Ref("multi:v1"))
	for p, want := range map[string]bool{"a/gone": false, "a/kept": true, "b/old": false, "b/new": true} {
		_, err := os.Lstat(filepath.Join(root, p))
		if (err == nil) != want {
			t.Errorf("%s exists=%v, want %v", p, err == nil, want)
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "owned"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1234 || st.Gid != 5678 || st.Mode&0o7777 != 0o4750 || st.Nlink != 2 || st.Mtim.Sec != 1700000000 {
		t.Errorf("owned: uid %d gid %d mode %o nlink %d mtime %d", st.Uid, st.Gid, st.Mode&0o7777, st.Nlink, st.Mtim.Sec)
	}
	buf := make([]byte, 16)
	n, err := unix.Getxattr(filepath.Join(root, "attr"), "user.berth", buf)
	if err != nil || string(buf[:n]) != "yes" {
		t.Errorf("xattr user.berth = %q, %v", buf[:n], err)
	}
}

func TestPullIndexPicksPlatform(t *testing.T) {
	requireRoot(t)
	reg := registry.Start(t, registry.Options{})
	l := registry.Layer(t, registry.Tar(t, registry.Entry{Name: "f", Body: "x"}), "gzip")
	amd, arm := registry.Image(t, "amd64", []string{"amd"}, l), registry.Image(t, "arm64", []string{"arm"}, l)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	top := reg.Push(t, "multiarch:v1", idx)
	s := openStore(t, image.Options{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}})
	img, err := s.Pull(context.Background(), reg.Ref("multiarch:v1"), image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img.Config.Config.Cmd[0] != "amd" || img.RepoDigests[0] != reg.Ref("multiarch@")+top.String() {
		t.Errorf("default platform: cmd %q digests %q", img.Config.Config.Cmd, img.RepoDigests)
	}
	img, err = s.Pull(context.Background(), reg.Ref("multiarch:v1"), image.PullOptions{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}})
	if err != nil || img.Config.Config.Cmd[0] != "arm" {
		t.Fatalf("arm64: %v %+v", err, img)
	}
	// The same as a Docker manifest list.
	reg.Push(t, "multiarch:docker", mutate.IndexMediaType(idx, types.DockerManifestList))
	img, err = s.Pull(context.Background(), reg.Ref("multiarch:docker"), image.PullOptions{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}})
	if err != nil || img.Config.Config.Cmd[0] != "arm" {
		t.Fatalf("arm64/v8 from a Docker manifest list: %v %+v", err, img)
	}
	_, err = s.Pull(context.Background(), reg.Ref("multiarch:v1"), image.PullOptions{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}})
	if !errdefs.NotFound(err) || !strings.Contains(err.Error(), "linux/amd64, linux/arm64/v8") {
		t.Errorf("missing platform: %v", err)
	}
}

// countingTransport counts blob downloads, per blob.
type countingTransport struct {
	mu    sync.Mutex
	blobs map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if _, d, ok := strings.Cut(r.URL.Path, "/blobs/"); ok && r.Method == http.MethodGet {
		c.mu.Lock()
		if c.blobs == nil {
			c.blobs = map[string]int{}
		}
		c.blobs[d]++
		c.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) count(l v1.Layer) int {
	d, _ := l.Digest()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blobs[d.String()]
}

func TestConcurrentPullsFetchOnceAndShareLayers(t *testing.T) {
	requireRoot(t)
	reg := registry.Start(t, registry.Options{})
	shared := registry.Layer(t, registry.Tar(t, registry.Entry{Name: "shared", Body: strings.Repeat("s", 1<<20)}), "gzip")
	own1 := registry.Layer(t, registry.Tar(t, registry.Entry{Name: "one", Body: "1"}), "gzip")
	own2 := registry.Layer(t, registry.Tar(t, registry.Entry{Name: "two", Body: "2"}), "")
	reg.Push(t, "one:v1", registry.Image(t, "amd64", nil, shared, own1))
	reg.Push(t, "two:v1", registry.Image(t, "amd64", nil, shared, own2))
	tr := &countingTransport{}
	root := t.TempDir()
	s := openStore(t, image.Options{Root: root, Transport: tr})
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = s.Pull(context.Background(), reg.Ref("one:v1"), image.PullOptions{})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Each layer once, however many pulls ran at the same time.
	for i, l := range []v1.Layer{shared, own1} {
		if n := tr.count(l); n != 1 {
			t.Errorf("layer %d downloaded %d times by 8 concurrent pulls", i, n)
		}
	}
	layersGot := func() int {
		ents, _ := os.ReadDir(filepath.Join(root, "storage", "layers", "sha256"))
		return len(ents)
	}
	if _, err := s.Pull(context.Background(), reg.Ref("two:v1"), image.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := tr.count(shared); n != 1 {
		t.Errorf("the shared layer was downloaded again for a second image (%d downloads)", n)
	}
	if n := tr.count(own2); n != 1 {
		t.Errorf("second image's own layer: %d downloads", n)
	}
	if n := layersGot(); n != 3 {
		t.Errorf("%d unpacked layers for 3 distinct layers", n)
	}
}

func TestPullWithAuth(t *testing.T) {
	requireRoot(t)
	for _, token := range []bool{false, true} {
		t.Run(map[bool]string{false: "basic", true: "token"}[token], func(t *testing.T) {
			reg := registry.Start(t, registry.Options{User: "berth", Password: "s3cret", Token: token})
			reg.Push(t, "private:v1", registry.Image(t, "amd64", nil, registry.Layer(t, registry.Tar(t, registry.Entry{Name: "f", Body: "x"}), "gzip")))
			s := openStore(t, image.Options{Keychain: authn.NewMultiKeychain()})
			_, err := s.Pull(context.Background(), reg.Ref("private:v1"), image.PullOptions{})
			if !errors.Is(err, errdefs.ErrUnauthorized) {
				t.Errorf("anonymous pull of a private image: %v", err)
			}
			_, err = s.Pull(context.Background(), reg.Ref("private:v1"), image.PullOptions{Auth: &authn.AuthConfig{Username: "berth", Password: "wrong"}})
			if !errors.Is(err, errdefs.ErrUnauthorized) {
				t.Errorf("wrong password: %v", err)
			}
			if _, err := s.Pull(context.Background(), reg.Ref("private:v1"), image.PullOptions{Auth: &authn.AuthConfig{Username: "berth", Password: "s3cret"}}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPullLargeLayer pulls a 100 MB layer and checks its content.
func TestPullLargeLayer(t *testing.T) {
	requireRoot(t)
	reg := registry.Start(t, registry.Options{})
	body := make([]byte, 100<<20)
	rand.NewChaCha8([32]byte{1}).Read(body[:50<<20])
	for i := 50 << 20; i < len(body); i += 64 {
		copy(body[i:], "text that compresses well, as most of a real layer does ......\n")
	}
	sum := sha256.Sum256(body)
	reg.Push(t, "large:v1", registry.Image(t, "amd64", nil, registry.Layer(t, registry.Tar(t, registry.Entry{Name: "big.bin", Body: string(body)}), "gzip")))
	s := openStore(t, image.Options{})
	img, err := s.Pull(context.Background(), reg.Ref("large:v1"), image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img.Size != int64(len(body)) {
		t.Errorf("image size %d, want %d", img.Size, len(body))
	}
	root := mountRootfs(t, s, "large", reg.Ref("large:v1"))
	f, err := os.Open(filepath.Join(root, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	if !bytes.Equal(h.Sum(nil), sum[:]) {
		t.Error("the unpacked 100 MB file differs from what was pushed")
	}
}

// TestImportThenPullSameLayer: a layer imported first (a plain tar blob)
// and then pulled (gzip, another blob of the same content) leaves both
// blobs in the store: it verifies, and both images save.
func TestImportThenPullSameLayer(t *testing.T) {
	requireRoot(t)
	reg := registry.Start(t, registry.Options{})
	s := openStore(t, image.Options{InsecureRegistries: []string{reg.Host}})
	tb := registry.BusyboxTar(t)
	if _, err := s.Import(bytes.NewReader(tb), image.ImportOptions{Ref: "imported:1"}); err != nil {
		t.Fatal(err)
	}
	reg.Push(t, "same/layer:1", registry.Image(t, "amd64", []string{"sh"}, registry.Layer(t, tb, "gzip")))
	if _, err := s.Pull(context.Background(), reg.Ref("same/layer:1"), image.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"imported:1", reg.Ref("same/layer:1")} {
		if err := s.Save(io.Discard, []string{ref}); err != nil {
			t.Errorf("save %s: %v", ref, err)
		}
	}
	if errs := s.Verify(); len(errs) != 0 {
		t.Errorf("verify: %v", errs)
	}
}
