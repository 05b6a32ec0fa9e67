package registry

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Layer makes a registry layer from a tar; comp is "gzip", "zstd" or "" (plain).
func Layer(t testing.TB, tarball_ []byte, comp string) v1.Layer {
	t.Helper()
	open := func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tarball_)), nil }
	var opts []tarball.LayerOption
	switch comp {
	case "zstd":
		opts = append(opts, tarball.WithCompression("zstd"), tarball.WithMediaType(types.OCILayerZStd))
	case "":
		l, err := tarball.LayerFromOpener(open, tarball.WithMediaType(types.OCIUncompressedLayer))
		if err != nil {
			t.Fatal(err)
		}
		return &uncompressed{l}
	}
	l, err := tarball.LayerFromOpener(open, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// uncompressed serves a layer's tar as its blob.
type uncompressed struct{ v1.Layer }

func (u *uncompressed) Compressed() (io.ReadCloser, error) { return u.Uncompressed() }
func (u *uncompressed) Digest() (v1.Hash, error)           { return u.DiffID() }
func (u *uncompressed) Size() (int64, error) {
	rc, _ := u.Uncompressed()
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}

// Image builds a linux image of the layers with a Cmd.
func Image(t testing.TB, arch string, cmd []string, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Cmd = cmd
	cf.Config.Env = []string{"PATH=/bin"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// BusyboxTar is a rootfs of Debian's static busybox.
func BusyboxTar(t testing.TB) []byte {
	t.Helper()
	return Tar(t, BusyboxEntries(t)...)
}

// BusyboxEntries are BusyboxTar's entries, for images that add to them.
func BusyboxEntries(t testing.TB) []Entry {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("busybox not installed (Debian's busybox-static)")
	}
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatalf("busybox --list: %v", err)
	}
	entries := []Entry{
		{Name: "bin/", Type: tar.TypeDir},
		{Name: "bin/busybox", Body: string(b), Mode: 0o755},
		{Name: "etc/", Type: tar.TypeDir},
		{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"},
		{Name: "etc/group", Body: "root:x:0:\nnogroup:x:65534:\n"},
		{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet != "busybox" {
			entries = append(entries, Entry{Name: "bin/" + applet, Type: tar.TypeSymlink, Linkname: "/bin/busybox"})
		}
	}
	return entries
}
