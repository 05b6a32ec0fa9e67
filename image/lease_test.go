package image_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/test/registry"
)

// gatedTransport holds the body of one blob download until open is closed
// (or fails it, if fail is closed first), and says when that download has
// started.
type gatedTransport struct {
	blob    string // digest whose download is held
	once    sync.Once
	started chan struct{}
	open    chan struct{}
	fail    chan struct{}
}

func newGate(blob string) *gatedTransport {
	return &gatedTransport{blob: blob, started: make(chan struct{}), open: make(chan struct{}), fail: make(chan struct{})}
}

func (g *gatedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err != nil || r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+g.blob) {
		return resp, err
	}
	g.once.Do(func() { close(g.started) })
	select {
	case <-g.open:
		return resp, nil
	case <-g.fail:
		resp.Body.Close()
		return nil, errors.New("download cut by the test")
	}
}

// within fails the test if fn has not returned in d.
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s waited for the pull in progress", what)
	}
}

// A prune, a remove and a container's rootfs neither wait for a pull in
// flight nor take what it has fetched so far.
func TestPruneAndRemoveDoNotWaitForAPull(t *testing.T) {
	requireRoot(t)
	reg := registry.Start(t, registry.Options{})
	held := registry.Layer(t, registry.Tar(t, registry.Entry{Name: "big", Body: strings.Repeat("b", 1<<20)}), "gzip")
	reg.Push(t, "slow:v1", registry.Image(t, "amd64", []string{"sh"}, held))
	reg.Push(t, "other:v1", registry.Image(t, "amd64", []string{"sh"}, registry.Layer(t, registry.BusyboxTar(t), "gzip")))
	hd, _ := held.Digest()
	gate := newGate(hd.String())
	root := t.TempDir()
	s := openStore(t, image.Options{Root: root, Transport: gate})
	defer close(gate.fail) // a test that stops early must not leave the pull blocked

	if _, err := s.Pull(context.Background(), reg.Ref("other:v1"), image.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	pulled := make(chan error, 1)
	go func() {
		_, err := s.Pull(context.Background(), reg.Ref("slow:v1"), image.PullOptions{})
		pulled <- err
	}()
	<-gate.started // the config is stored, the layer's download is under way

	var err error
	within(t, 10*time.Second, "a rootfs", func() { _, err = s.PrepareRootfs("ctr1", reg.Ref("other:v1")) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.RemoveRootfs("ctr1") })
	within(t, 10*time.Second, "prune", func() {
		if _, err := s.Prune(true); err != nil {
			t.Error(err)
		}
	})
	within(t, 10*time.Second, "remove", func() {
		if _, err := s.Remove(reg.Ref("other:v1"), true); err != nil {
			t.Error(err)
		}
	})
	close(gate.open)
	if err := <-pulled; err != nil {
		t.Fatalf("the pull failed after a prune ran beside it: %v", err)
	}
	dir := mountRootfs(t, s, "ctr2", reg.Ref("slow:v1"))
	if n, err := filepath.Glob(filepath.Join(dir, "big")); err != nil || len(n) != 1 {
		t.Errorf("the pulled image lacks its file: %v %v", n, err)
	}
}

// Content a sweep kept only because a pull had pinned it goes when that
// pull fails: a prune during a failed pull leaves no blob behind.
func TestSweepKeptForAFailedPullIsFinishedAtRelease(t *testing.T) {
	requireRoot(t)
	reg := registry.Start(t, registry.Options{})
	held := registry.Layer(t, registry.Tar(t, registry.Entry{Name: "f", Body: "x"}), "gzip")
	reg.Push(t, "doomed:v1", registry.Image(t, "amd64", nil, held))
	hd, _ := held.Digest()
	gate := newGate(hd.String())
	root := t.TempDir()
	s := openStore(t, image.Options{Root: root, Transport: gate})

	pulled := make(chan error, 1)
	go func() {
		_, err := s.Pull(context.Background(), reg.Ref("doomed:v1"), image.PullOptions{})
		pulled <- err
	}()
	<-gate.started
	blobs := filepath.Join(root, "content/blobs/sha256")
	if n := countDir(t, blobs); n != 1 {
		t.Fatalf("%d blobs before the layer, want 1 (the config)", n)
	}
	if _, err := s.Prune(true); err != nil {
		t.Fatal(err)
	}
	if n := countDir(t, blobs); n != 1 {
		t.Fatalf("the prune took the config of the pull in flight (%d blobs)", n)
	}
	close(gate.fail)
	if err := <-pulled; err == nil {
		t.Fatal("the pull succeeded without its layer")
	}
	for _, d := range []string{"content/blobs/sha256", "storage/layers/sha256"} {
		if n := countDir(t, filepath.Join(root, d)); n != 0 {
			t.Errorf("%s: %d entries left by the failed pull after the prune", d, n)
		}
	}
}
