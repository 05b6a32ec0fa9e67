package image_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/test/registry"
)

func countDir(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestTagRemovePrune(t *testing.T) {
	requireRoot(t)
	reg := registry.Start(t, registry.Options{})
	reg.Push(t, "app:v1", registry.Image(t, "amd64", []string{"one"}, registry.Layer(t, registry.Tar(t, registry.Entry{Name: "f", Body: "1"}), "gzip")))
	reg.Push(t, "other:v1", registry.Image(t, "amd64", []string{"two"}, registry.Layer(t, registry.Tar(t, registry.Entry{Name: "g", Body: "2"}), "gzip")))
	root := t.TempDir()
	s := openStore(t, image.Options{Root: root})
	ctx := context.Background()
	app, err := s.Pull(ctx, reg.Ref("app:v1"), image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(ctx, reg.Ref("other:v1"), image.PullOptions{}); err != nil {
		t.Fatal(err)
	}

	if err := s.Tag(reg.Ref("app:v1"), "myapp"); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get("myapp:latest")
	if err != nil || got.ID != app.ID || !slices.Equal(got.RepoTags, []string{reg.Ref("app:v1"), "docker.io/library/myapp:latest"}) {
		t.Fatalf("after tag: %+v %v", got, err)
	}
	if image.Familiar("docker.io/library/myapp:latest") != "myapp:latest" || image.Familiar("docker.io/me/app:1") != "me/app:1" {
		t.Error("familiar names")
	}
	if err := s.Tag("nope:v9", "x"); !errdefs.NotFound(err) {
		t.Errorf("tag of unknown image: %v", err)
	}
	// By ID with two names: refused without force.
	if _, err := s.Remove(app.ID.String(), false); !errdefs.Conflict(err) {
		t.Errorf("remove by ID with two names: %v", err)
	}
	// By one of two names: untag only.
	res, err := s.Remove("myapp", false)
	if err != nil || len(res.Deleted) != 0 || !slices.Equal(res.Untagged, []string{"docker.io/library/myapp:latest"}) {
		t.Fatalf("untag: %+v %v", res, err)
	}

	// In use by a rootfs: refused; forced, only untagged; layers stay.
	if _, err := s.PrepareRootfs("ctr1", reg.Ref("app:v1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(reg.Ref("app:v1"), false); !errdefs.Conflict(err) {
		t.Errorf("remove of an image in use: %v", err)
	}
	res, err = s.Remove(reg.Ref("app:v1"), true)
	if err != nil || len(res.Deleted) != 0 || len(res.Untagged) != 1 {
		t.Fatalf("forced remove of an image in use: %+v %v", res, err)
	}
	if got, err := s.Get(app.ID.String()); err != nil || len(got.RepoTags) != 0 {
		t.Errorf("dangling image: %+v %v", got, err)
	}
	pr, err := s.Prune(false)
	if err != nil || len(pr.Deleted) != 0 {
		t.Errorf("prune removed an image a rootfs uses: %+v %v", pr, err)
	}
	if err := s.RemoveRootfs("ctr1"); err != nil {
		t.Fatal(err)
	}
	pr, err = s.Prune(false)
	if err != nil || len(pr.Deleted) != 1 || pr.Deleted[0] != app.ID || pr.Reclaimed == 0 {
		t.Fatalf("prune of the dangling image: %+v %v", pr, err)
	}
	if _, err := s.Get(app.ID.String()); !errdefs.NotFound(err) {
		t.Errorf("pruned image still there: %v", err)
	}
	// other:v1 is tagged: only prune(all) takes it, and then nothing is left.
	if n := countDir(t, filepath.Join(root, "storage/layers/sha256")); n != 1 {
		t.Errorf("%d unpacked layers, want 1 (other:v1's)", n)
	}
	if _, err := s.Prune(true); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"content/blobs/sha256", "storage/layers/sha256", "storage/rw"} {
		if n := countDir(t, filepath.Join(root, d)); n != 0 {
			t.Errorf("%s: %d entries after prune -a", d, n)
		}
	}
	if imgs, err := s.List(); err != nil || len(imgs) != 0 {
		t.Errorf("images after prune -a: %d %v", len(imgs), err)
	}
}

func TestDataRootLockedAgainstSecondProcess(t *testing.T) {
	root := t.TempDir()
	s := openStore(t, image.Options{Root: root})
	_ = s
	if _, err := image.Open(image.Options{Root: root}); !errdefs.Conflict(err) {
		t.Errorf("second open of a data root: %v", err)
	}
}
