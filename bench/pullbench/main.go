// Command pullbench times pulling and unpacking a ~100 MB, four-layer image
// from a registry on loopback: Berth's image store against `tar -xzf` of
// the same layer blobs (already on local disk) and against `skopeo copy`
// followed by `tar -xzf`. Rounds interleave the contenders; it prints
// medians and ratios.
//
// usage: pullbench -n rounds -work dir   (run as root: layers keep owners)
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-project/berth/bench/stats"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/test/registry"
)

func main() {
	rounds := flag.Int("n", 5, "rounds")
	work := flag.String("work", "", "scratch directory (required)")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the whole run here")
	flag.Parse()
	if *prof != "" {
		f, err := os.Create(*prof)
		if err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	if *work == "" {
		fmt.Fprintln(os.Stderr, "pullbench: -work is required")
		os.Exit(2)
	}
	if err := run(*rounds, *work); err != nil {
		fmt.Fprintln(os.Stderr, "pullbench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// file is one file of a generated layer: size bytes, the first part random
// (incompressible), the rest text-like.
type file struct {
	name   string
	size   int
	random float64 // fraction of incompressible bytes
}

// layerSpecs describe the image: many small files, a large binary, mixed
// mid-size files, a large incompressible file — about 100 MB in all.
func layerSpecs() [][]file {
	var small, mid []file
	for i := range 2000 {
		small = append(small, file{fmt.Sprintf("usr/share/doc/pkg%d/file%d.txt", i/20, i), 6000 + i*7, 0.2})
	}
	for i := range 500 {
		mid = append(mid, file{fmt.Sprintf("usr/lib/mod%d/lib%d.so", i/25, i), 40000, 0.5})
	}
	return [][]file{
		small,
		{{"opt/app/bin/server", 30 << 20, 0.5}},
		mid,
		{{"var/data/blob.bin", 25 << 20, 1}},
	}
}

func genTar(files []file, rng *rand.ChaCha8) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	words := []byte("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor\n")
	for _, f := range files {
		for d := filepath.Dir(f.name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	ds := slices.Sorted(func(yield func(string) bool) {
		for d := range dirs {
			if !yield(d) {
				return
			}
		}
	})
	for _, d := range ds {
		tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(1700000000, 0)})
	}
	for _, f := range files {
		body := make([]byte, f.size)
		nr := int(float64(f.size) * f.random)
		rng.Read(body[:nr])
		for i := nr; i < f.size; i += len(words) {
			copy(body[i:], words)
		}
		tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(f.size), ModTime: time.Unix(1700000000, 0)})
		tw.Write(body)
	}
	tw.Close()
	return buf.Bytes()
}

func run(rounds int, work string) error {
	reg, err := registry.Run(filepath.Join(work, "registry"), registry.Options{})
	if err != nil {
		return err
	}
	defer reg.Stop()

	rng := rand.NewChaCha8([32]byte{'b', 'e', 'r', 't', 'h'})
	var layers []v1.Layer
	var total, compressed int64
	blobDir := filepath.Join(work, "blobs")
	os.MkdirAll(blobDir, 0o755)
	var blobFiles []string
	for i, spec := range layerSpecs() {
		tb := genTar(spec, rng)
		total += int64(len(tb))
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb)), nil })
		if err != nil {
			return err
		}
		layers = append(layers, l)
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		p := filepath.Join(blobDir, fmt.Sprintf("layer%d.tar.gz", i))
		f, _ := os.Create(p)
		n, err := io.Copy(f, rc)
		f.Close()
		rc.Close()
		if err != nil {
			return err
		}
		compressed += n
		blobFiles = append(blobFiles, p)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return err
	}
	ref := reg.Ref("bench/app:v1")
	tag, _ := name.NewTag(ref)
	if err := remote.Write(tag, img); err != nil {
		return err
	}
	fmt.Printf("image: %d layers, %.1f MB as tar, %.1f MB compressed (gzip); registry: docker-registry on %s\n",
		len(layers), float64(total)/1e6, float64(compressed)/1e6, reg.Host)

	contenders := []struct {
		name string
		run  func(dir string) error
	}{
		{"berth pull", func(dir string) error {
			s, err := image.Open(image.Options{Root: dir})
			if err != nil {
				return err
			}
			defer s.Close()
			_, err = s.Pull(context.Background(), ref, image.PullOptions{})
			return err
		}},
		{"tar -xzf", func(dir string) error {
			return untarAll(dir, blobFiles)
		}},
	}
	if skopeo, err := exec.LookPath("skopeo"); err == nil {
		contenders = append(contenders, struct {
			name string
			run  func(dir string) error
		}{"skopeo copy + tar -xzf", func(dir string) error {
			cp := filepath.Join(dir, "copy")
			out, err := exec.Command(skopeo, "copy", "--quiet", "--src-tls-verify=false", "docker://"+ref, "dir:"+cp).CombinedOutput()
			if err != nil {
				return fmt.Errorf("skopeo: %v: %s", err, out)
			}
			m, err := os.ReadFile(filepath.Join(cp, "manifest.json"))
			if err != nil {
				return err
			}
			mf, err := v1.ParseManifest(bytes.NewReader(m))
			if err != nil {
				return err
			}
			var files []string
			for _, l := range mf.Layers {
				files = append(files, filepath.Join(cp, l.Digest.Hex))
			}
			return untarAll(filepath.Join(dir, "rootfs"), files)
		}})
	}

	times := make([][]time.Duration, len(contenders))
	for r := range rounds {
		for i, c := range contenders {
			dir := filepath.Join(work, fmt.Sprintf("round%d-%d", r, i))
			os.MkdirAll(dir, 0o755)
			// Start each run with no dirty pages from the one before, so
			// that nobody pays for another's writeback.
			syscall.Sync()
			start := time.Now()
			err := c.run(dir)
			d := time.Since(start)
			os.RemoveAll(dir)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			times[i] = append(times[i], d)
		}
	}
	base := stats.Median(times[0])
	fmt.Printf("%-24s %10s %10s  (%d rounds, interleaved)\n", "", "median", "vs berth", rounds)
	for i, c := range contenders {
		m := stats.Median(times[i])
		fmt.Printf("%-24s %8.0fms %9.2fx\n", c.name, float64(m)/1e6, float64(m)/float64(base))
	}
	return nil
}

// untarAll extracts gzip'd layer tars in order into dir with GNU tar.
func untarAll(dir string, files []string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		out, err := exec.Command("tar", "-xzf", f, "-C", dir).CombinedOutput()
		if err != nil {
			return fmt.Errorf("tar -xzf %s: %v: %s", f, err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}
