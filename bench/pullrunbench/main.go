// Command pullrunbench measures what a pull in flight costs a container's
// create and remove in the image store: the writable layer made and
// removed (PrepareRootfs + RemoveRootfs, the store's share of every
// `docker run --rm`), idle and while a ~250 MB image is pulled from a
// registry on loopback. Prints medians and their ratio.
//
// usage: pullrunbench -work DIR [-n rounds] [-mb size]
//
// With -serve it only runs the registry with the big image, prints its
// reference and serves until its standard input closes (bench/pullrun.sh
// then pulls it through berthd).
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
	"path/filepath"
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
	rounds := flag.Int("n", 20, "create+remove rounds, idle and during the pull")
	work := flag.String("work", "", "scratch directory (required)")
	mb := flag.Int("mb", 250, "size of the pulled image, MB")
	serve := flag.Bool("serve", false, "only serve the image (see the command's doc)")
	flag.Parse()
	if *work == "" {
		fmt.Fprintln(os.Stderr, "pullrunbench: -work is required")
		os.Exit(2)
	}
	if *serve {
		if err := serveBig(*work, *mb); err != nil {
			fmt.Fprintln(os.Stderr, "pullrunbench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*work, *rounds, *mb); err != nil {
		fmt.Fprintln(os.Stderr, "pullrunbench:", err)
		os.Exit(1)
	}
}

// layer is a tar of one file of size bytes, random (incompressible), so
// that the pull's download and unpack take their full time.
func layer(name string, size int, rng *rand.ChaCha8) (v1.Layer, error) {
	data := make([]byte, size)
	rng.Read(data)
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(data); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	tb := b.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb)), nil })
}

func push(ref string, layers ...v1.Layer) error {
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	return remote.Write(tag, img)
}

// pushBig pushes the image of five random layers, mb MB in all.
func pushBig(ref string, mb int, rng *rand.ChaCha8) error {
	var layers []v1.Layer
	for i := 0; i < 5; i++ {
		l, err := layer(fmt.Sprintf("big%d", i), mb<<20/5, rng)
		if err != nil {
			return err
		}
		layers = append(layers, l)
	}
	return push(ref, layers...)
}

func serveBig(work string, mb int) error {
	reg, err := registry.Run(filepath.Join(work, "registry"), registry.Options{})
	if err != nil {
		return err
	}
	defer reg.Stop()
	big := reg.Ref("bench/big:v1")
	if err := pushBig(big, mb, rand.NewChaCha8([32]byte{'s', 'e', 'r', 'v', 'e'})); err != nil {
		return err
	}
	fmt.Println(big)
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

func run(work string, rounds, mb int) error {
	reg, err := registry.Run(filepath.Join(work, "registry"), registry.Options{})
	if err != nil {
		return err
	}
	defer reg.Stop()
	rng := rand.NewChaCha8([32]byte{'p', 'u', 'l', 'l', 'r', 'u', 'n'})
	small, big := reg.Ref("bench/small:v1"), reg.Ref("bench/big:v1")
	l, err := layer("small", 4096, rng)
	if err != nil {
		return err
	}
	if err := push(small, l); err != nil {
		return err
	}
	if err := pushBig(big, mb, rng); err != nil {
		return err
	}

	s, err := image.Open(image.Options{Root: filepath.Join(work, "store")})
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := s.Pull(context.Background(), small, image.PullOptions{}); err != nil {
		return err
	}
	n := 0
	createRemove := func() (time.Duration, error) {
		n++
		key := fmt.Sprintf("bench-%d", n)
		start := time.Now()
		if _, err := s.PrepareRootfs(key, small); err != nil {
			return 0, err
		}
		if err := s.RemoveRootfs(key); err != nil {
			return 0, err
		}
		return time.Since(start), nil
	}

	var idle []time.Duration
	for i := 0; i < rounds; i++ {
		d, err := createRemove()
		if err != nil {
			return err
		}
		idle = append(idle, d)
	}

	pulled := make(chan error, 1)
	pullStart := time.Now()
	go func() {
		_, err := s.Pull(context.Background(), big, image.PullOptions{})
		pulled <- err
	}()
	time.Sleep(200 * time.Millisecond) // the pull is downloading
	var during []time.Duration
	var pullErr error
	pullDone := false
	for i := 0; i < rounds; i++ {
		d, err := createRemove()
		if err != nil {
			return err
		}
		during = append(during, d)
		select {
		case pullErr = <-pulled:
			pullDone = true
		default:
		}
		if pullDone {
			break
		}
	}
	if !pullDone {
		pullErr = <-pulled
	}
	pullTime := time.Since(pullStart)
	if pullErr != nil {
		return pullErr
	}
	mi, md := stats.Median(idle), stats.Median(during)
	fmt.Printf("pull of a %d MB image (5 layers, random): %v\n", mb, pullTime.Round(time.Millisecond))
	fmt.Printf("writable layer made + removed (the store's share of run --rm), median of %d / %d rounds:\n", len(idle), len(during))
	fmt.Printf("  idle store         %8.2f ms\n", ms(mi))
	fmt.Printf("  during the pull    %8.2f ms  (%.2fx idle; longest %.2f ms)\n", ms(md), float64(md)/float64(mi), ms(longest(during)))
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func longest(d []time.Duration) time.Duration {
	var m time.Duration
	for _, x := range d {
		m = max(m, x)
	}
	return m
}
