package image_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/test/registry"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	requireRoot(t)
	reg := registry.Start(t, registry.Options{})
	bb := registry.Layer(t, registry.BusyboxTar(t), "gzip")
	extra := registry.Layer(t, registry.Tar(t, registry.Entry{Name: "etc/motd", Body: "hello\n"}), "zstd")
	reg.Push(t, "app:v1", registry.Image(t, "amd64", []string{"sh"}, bb, extra))
	src := openStore(t, image.Options{})
	img, err := src.Pull(context.Background(), reg.Ref("app:v1"), image.PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Tag(img.ID.String(), "local/app:saved"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := src.Save(&buf, []string{img.ID.String()}); err != nil {
		t.Fatal(err)
	}
	archive := buf.Bytes()

	dst := openStore(t, image.Options{})
	names, err := dst.Load(bytes.NewReader(archive), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{reg.Ref("app:v1"), "docker.io/local/app:saved"}; !slices.Equal(names, want) {
		t.Errorf("loaded %q, want %q", names, want)
	}
	got, err := dst.Get("local/app:saved")
	if err != nil || got.ID != img.ID || len(got.Layers) != 2 || got.Layers[1].Digest != img.Layers[1].Digest {
		t.Fatalf("loaded image %+v, %v", got, err)
	}
	root := mountRootfs(t, dst, "loaded", "local/app:saved")
	if b, err := os.ReadFile(filepath.Join(root, "etc/motd")); err != nil || string(b) != "hello\n" {
		t.Errorf("motd from the loaded image: %q %v", b, err)
	}
	// Loading again changes nothing and unpacks nothing new.
	if _, err := dst.Load(bytes.NewReader(archive), nil); err != nil {
		t.Fatal(err)
	}

	// Other tools read it as both formats.
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo not installed: the archive was not checked with another reader")
	}
	f := filepath.Join(t.TempDir(), "saved.tar")
	os.WriteFile(f, archive, 0o600)
	for _, transport := range []string{"oci-archive:" + f + ":saved", "docker-archive:" + f + ":local/app:saved"} {
		out, err := exec.Command(skopeo, "inspect", "--config", transport).CombinedOutput()
		if err != nil || !strings.Contains(string(out), `"sh"`) {
			t.Errorf("skopeo inspect %s: %v\n%s", transport, err, out)
		}
	}
}

// TestLoadArchivesOtherToolsWrote loads what skopeo writes: a
// docker-archive (uncompressed layers, named by path) and an OCI archive.
func TestLoadArchivesOtherToolsWrote(t *testing.T) {
	requireRoot(t)
	skopeo, err := exec.LookPath("skopeo")
	if err != nil {
		t.Skip("skopeo not installed (scripts/deps.sh installs it)")
	}
	reg := registry.Start(t, registry.Options{})
	reg.Push(t, "app:v1", registry.Image(t, "amd64", []string{"sh"}, registry.Layer(t, registry.BusyboxTar(t), "gzip"), registry.Layer(t, registry.Tar(t, registry.Entry{Name: "x", Body: "x"}), "gzip")))
	dir := t.TempDir()
	for _, tc := range []struct{ name, dest string }{
		{"docker-archive", "docker-archive:" + filepath.Join(dir, "d.tar") + ":other/app:v2"},
		{"oci-archive", "oci-archive:" + filepath.Join(dir, "o.tar") + ":v3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(skopeo, "copy", "--quiet", "--src-tls-verify=false", "docker://"+reg.Ref("app:v1"), tc.dest).CombinedOutput()
			if err != nil {
				t.Fatalf("skopeo copy: %v\n%s", err, out)
			}
			file := strings.Split(tc.dest, ":")[1]
			f, err := os.Open(file)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			s := openStore(t, image.Options{})
			names, err := s.Load(f, nil)
			if err != nil {
				t.Fatal(err)
			}
			img, err := s.Get(names[0])
			if err != nil || len(img.Layers) != 2 || img.Config.Config.Cmd[0] != "sh" {
				t.Fatalf("loaded %q: %+v %v", names, img, err)
			}
			root := mountRootfs(t, s, "c", names[0])
			if _, err := os.Stat(filepath.Join(root, "bin/busybox")); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestImportRootfsTarball(t *testing.T) {
	requireRoot(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(registry.BusyboxTar(t))
	zw.Close()
	s := openStore(t, image.Options{})
	img, err := s.Import(bytes.NewReader(gz.Bytes()), image.ImportOptions{Ref: "imported:v1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Layers) != 1 || img.RepoTags[0] != "docker.io/library/imported:v1" || img.Config.OS != "linux" {
		t.Fatalf("imported %+v", img)
	}
	root := mountRootfs(t, s, "imp", "imported:v1")
	if out, err := exec.Command("chroot", root, "/bin/sh", "-c", "echo ok").CombinedOutput(); err != nil || string(out) != "ok\n" {
		t.Errorf("busybox from the imported image: %v %s", err, out)
	}
}

func TestLoadBadArchives(t *testing.T) {
	requireRoot(t)
	cases := []struct {
		name    string
		entries []registry.Entry
		want    string
	}{
		{"not an image archive", []registry.Entry{{Name: "hello.txt", Body: "hi"}}, "neither manifest.json nor index.json"},
		{"member escapes", []registry.Entry{{Name: "../../evil", Body: "x"}}, "leads out of the archive"},
		{"missing layer", []registry.Entry{
			{Name: "manifest.json", Body: `[{"Config":"c.json","RepoTags":["x:1"],"Layers":["nothing/layer.tar"]}]`},
			{Name: "c.json", Body: `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}`},
		}, `member "nothing/layer.tar" is missing`},
		{"wrong diffID", []registry.Entry{
			{Name: "manifest.json", Body: `[{"Config":"c.json","RepoTags":["x:1"],"Layers":["l.tar"]}]`},
			{Name: "c.json", Body: `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}`},
			{Name: "l.tar", Body: string(registry.Tar(t, registry.Entry{Name: "f", Body: "x"}))},
		}, "the image config says sha256:0000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			s := openStore(t, image.Options{Root: root})
			_, err := s.Load(bytes.NewReader(registry.Tar(t, tc.entries...)), nil)
			if !errdefs.Invalid(err) || !strings.Contains(fmt_(err), tc.want) {
				t.Errorf("load: %v; want an error with %q", err, tc.want)
			}
			if imgs, _ := s.List(); len(imgs) != 0 {
				t.Errorf("%d images after a failed load", len(imgs))
			}
			s.Prune(true)
			assertNothingFrom(t, root)
			if ents, _ := os.ReadDir(filepath.Join(root, "tmp")); len(ents) != 0 {
				t.Errorf("load left %d entries in tmp/", len(ents))
			}
		})
	}
}

func fmt_(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}
