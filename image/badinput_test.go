package image_test

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/storage/unpack"
	"github.com/berth-project/berth/test/registry"
)

// assertNothingFrom checks that a failed pull left no blob, no unpacked
// layer and no image behind (the store's Verify runs at cleanup too).
func assertNothingFrom(t *testing.T, root string) {
	t.Helper()
	for _, d := range []string{"content/blobs/sha256", "content/ingest", "storage/layers/sha256", "storage/layers/tmp"} {
		ents, err := os.ReadDir(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			t.Errorf("left behind: %s/%s", d, e.Name())
		}
	}
}

// TestMaliciousLayersRefused pushes layers that try to write outside their
// root and checks that each pull fails naming the image and layer, writes
// nothing outside, and leaves nothing in the store.
func TestMaliciousLayersRefused(t *testing.T) {
	requireRoot(t)
	reg := registry.Start(t, registry.Options{})
	outside := t.TempDir() // a host directory the layers aim at
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	up := strings.Repeat("../", 40)
	cases := []struct {
		name    string
		entries []registry.Entry
		want    string
	}{
		{"tar slip", []registry.Entry{{Name: up + outside[1:] + "/slip", Body: "x"}}, "leads out of the layer"},
		{"absolute path", []registry.Entry{{Name: outside + "/abs", Body: "x"}}, "absolute path"},
		{"write through symlink to host", []registry.Entry{
			{Name: "link", Type: tar.TypeSymlink, Linkname: outside},
			{Name: "link/victim", Body: "overwritten"},
		}, "passes through a symlink"},
		{"write through relative symlink", []registry.Entry{
			{Name: "d/", Type: tar.TypeDir},
			{Name: "d/up", Type: tar.TypeSymlink, Linkname: up + outside[1:]},
			{Name: "d/up/victim", Body: "overwritten"},
		}, "passes through a symlink"},
		{"hardlink out", []registry.Entry{{Name: "hl", Type: tar.TypeLink, Linkname: up + victim[1:]}}, "leads out of the layer"},
		{"hardlink through symlink", []registry.Entry{
			{Name: "link", Type: tar.TypeSymlink, Linkname: outside},
			{Name: "hl", Type: tar.TypeLink, Linkname: "link/victim"},
		}, "passes through a symlink"},
		{"hardlink to missing", []registry.Entry{{Name: "hl", Type: tar.TypeLink, Linkname: "nothing"}}, "is not in the layer"},
		{"device node", []registry.Entry{{Name: "sda", Type: tar.TypeBlock}}, "device nodes are not allowed"},
		{"huge header", nil, "header"},
		{"truncated tar", []registry.Entry{{Name: "short", Body: "abc", Size: 1 << 30}}, "EOF"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref := fmt.Sprintf("evil%d:v1", i)
			tb := registry.Tar(t, tc.entries...)
			if tc.entries == nil {
				tb = registry.HugePAXTar(4 << 20)
			}
			l := registry.Layer(t, tb, "gzip")
			ld, _ := l.Digest()
			reg.Push(t, ref, registry.Image(t, "amd64", nil, l))
			root := t.TempDir()
			s := openStore(t, image.Options{Root: root, Unpack: unpack.Options{AllowDevices: false}})
			_, err := s.Pull(context.Background(), reg.Ref(ref), image.PullOptions{})
			if err == nil {
				t.Fatal("pull of a malicious layer succeeded")
			}
			msg := err.Error()
			for _, want := range []string{reg.Ref(ref), ld.String(), tc.want} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not name %q", msg, want)
				}
			}
			if b, _ := os.ReadFile(victim); string(b) != "untouched" {
				t.Errorf("host file changed: %q", b)
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 1 {
				t.Errorf("something was written to the host directory: %v", ents)
			}
			// The config blob came first and stays until pruned; the
			// layer left nothing.
			if _, err := s.Prune(true); err != nil {
				t.Fatal(err)
			}
			assertNothingFrom(t, root)
		})
	}
}

func TestForeignLayerRefused(t *testing.T) {
	requireRoot(t)
	reg := registry.Start(t, registry.Options{})
	l := registry.Layer(t, registry.Tar(t, registry.Entry{Name: "f", Body: "x"}), "gzip")
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: l, MediaType: types.DockerForeignLayer, URLs: []string{"https://example.invalid/layer"}})
	if err != nil {
		t.Fatal(err)
	}
	reg.Push(t, "foreign:v1", img)
	root := t.TempDir()
	s := openStore(t, image.Options{Root: root})
	_, err = s.Pull(context.Background(), reg.Ref("foreign:v1"), image.PullOptions{})
	if !errdefs.Invalid(err) || !strings.Contains(err.Error(), "foreign (non-distributable)") {
		t.Errorf("foreign layer: %v", err)
	}
	assertNothingFrom(t, root)
}

// TestCorruptBlobsRefused serves a layer whose bytes were changed or cut
// short in the registry's storage.
func TestCorruptBlobsRefused(t *testing.T) {
	requireRoot(t)
	reg := registry.Start(t, registry.Options{})
	for _, tc := range []struct {
		name   string
		damage func(path string)
		want   string
	}{
		{"digest mismatch", func(p string) {
			f, _ := os.OpenFile(p, os.O_WRONLY, 0)
			f.WriteAt([]byte("XXXX"), 100)
			f.Close()
		}, "content has digest sha256:"},
		{"truncated", func(p string) { os.Truncate(p, 200) }, "got 200 bytes, expected 66"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := make([]byte, 64<<10)
			rand.Read(body)
			l := registry.Layer(t, registry.Tar(t, registry.Entry{Name: "data", Body: string(body)}), "gzip")
			ld, _ := l.Digest()
			ref := "corrupt-" + strings.ReplaceAll(tc.name, " ", "-") + ":v1"
			reg.Push(t, ref, registry.Image(t, "amd64", nil, l))
			tc.damage(reg.BlobPath(ld))
			root := t.TempDir()
			s := openStore(t, image.Options{Root: root})
			_, err := s.Pull(context.Background(), reg.Ref(ref), image.PullOptions{})
			if err == nil || !strings.Contains(err.Error(), ld.String()) || !strings.Contains(err.Error(), reg.Ref(ref)) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("corrupt layer: %v", err)
			}
			t.Log(err)
			if _, err := s.Prune(true); err != nil {
				t.Fatal(err)
			}
			assertNothingFrom(t, root)
		})
	}
}

// TestFullDiskDuringPull pulls a 48 MiB layer into a 16 MiB tmpfs data root.
func TestFullDiskDuringPull(t *testing.T) {
	requireRoot(t)
	reg := registry.Start(t, registry.Options{})
	body := make([]byte, 48<<20)
	rand.Read(body)
	l := registry.Layer(t, registry.Tar(t, registry.Entry{Name: "big", Body: string(body)}), "gzip")
	reg.Push(t, "big:v1", registry.Image(t, "amd64", nil, l))
	root := t.TempDir()
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "size=16m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })
	s := openStore(t, image.Options{Root: root})
	_, err := s.Pull(context.Background(), reg.Ref("big:v1"), image.PullOptions{})
	if err == nil || !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), reg.Ref("big:v1")) {
		t.Fatalf("pull onto a full disk: %v", err)
	}
	t.Log(err)
	if _, err := s.Prune(true); err != nil {
		t.Fatal(err)
	}
	assertNothingFrom(t, root)
	var st unix.Statfs_t
	unix.Statfs(root, &st)
	if used := (st.Blocks - st.Bfree) * uint64(st.Bsize); used > 1<<20 {
		t.Errorf("%d bytes still used on the data root after the failed pull", used)
	}
	// The store still works once there is room.
	small := registry.Layer(t, registry.Tar(t, registry.Entry{Name: "f", Body: "x"}), "gzip")
	reg.Push(t, "small:v1", registry.Image(t, "amd64", nil, small))
	if _, err := s.Pull(context.Background(), reg.Ref("small:v1"), image.PullOptions{}); err != nil {
		t.Fatal(err)
	}
}
