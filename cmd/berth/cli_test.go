package main

import (
	"archive/tar"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/test/registry"
)

// TestImageCommands drives the built berth binary: pull from a registry on
// loopback, list, save, load into a second data root, verify, remove.
func TestImageCommands(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: unpacking preserves ownership")
	}
	reg := registry.Start(t, registry.Options{})
	tb := registry.Tar(t, registry.Entry{Name: "etc/", Type: tar.TypeDir}, registry.Entry{Name: "etc/hostname", Body: "box\n"})
	reg.Push(t, "cli/app:v1", registry.Image(t, "amd64", nil, registry.Layer(t, tb, "gzip")))
	dir := t.TempDir()
	bin := filepath.Join(dir, "berth")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	berth := func(root string, args ...string) (string, error) {
		out, err := exec.Command(bin, append([]string{"--data-root", filepath.Join(dir, root)}, args...)...).CombinedOutput()
		return string(out), err
	}
	must := func(root string, args ...string) string {
		t.Helper()
		out, err := berth(root, args...)
		if err != nil {
			t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	out := must("a", "pull", reg.Ref("cli/app:v1"))
	for _, want := range []string{"Pulling fs layer", "Pull complete", "Status: Downloaded newer image for"} {
		if !strings.Contains(out, want) {
			t.Errorf("pull output lacks %q:\n%s", want, out)
		}
	}
	if out := must("a", "images"); !strings.Contains(out, reg.Ref("cli/app")+"   v1") {
		t.Errorf("images:\n%s", out)
	}
	archive := filepath.Join(dir, "app.tar")
	must("a", "save", "-o", archive, reg.Ref("cli/app:v1"))
	if out := must("b", "load", "-i", archive); !strings.Contains(out, "Loaded image: "+reg.Ref("cli/app:v1")) {
		t.Errorf("load:\n%s", out)
	}
	if out := must("b", "image", "verify"); !strings.Contains(out, "consistent") {
		t.Errorf("verify:\n%s", out)
	}
	if out, err := berth("b", "pull", reg.Ref("cli/none:v1")); err == nil || !strings.Contains(out, "berth: pull "+reg.Ref("cli/none:v1")+": image "+reg.Ref("cli/none:v1")+" not found") {
		t.Errorf("pull of a missing image: %v\n%s", err, out)
	}
	if out := must("b", "rmi", reg.Ref("cli/app:v1")); !strings.Contains(out, "Deleted: sha256:") {
		t.Errorf("rmi:\n%s", out)
	}
	if out := must("b", "images", "-q"); out != "" {
		t.Errorf("images after rmi: %q", out)
	}
}

func TestProgressPrinter(t *testing.T) {
	var tty, plain bytes.Buffer
	for _, p := range []*progressPrinter{newProgressPrinter(&tty, true), newProgressPrinter(&plain, false)} {
		p.Show(image.Progress{ID: "v1", Status: "Pulling from app"})
		p.Show(image.Progress{ID: "aaaaaaaaaaaa", Status: "Pulling fs layer"})
		p.Show(image.Progress{ID: "bbbbbbbbbbbb", Status: "Pulling fs layer"})
		p.Show(image.Progress{ID: "aaaaaaaaaaaa", Status: "Downloading", Current: 500, Total: 1000})
		p.Show(image.Progress{ID: "aaaaaaaaaaaa", Status: "Downloading", Current: 900, Total: 1000})
		p.Show(image.Progress{ID: "aaaaaaaaaaaa", Status: "Pull complete"})
	}
	// On a terminal the first layer's line (two up) is redrawn with a bar.
	if !strings.Contains(tty.String(), "\x1b[2A\x1b[2K\raaaaaaaaaaaa: Downloading [====================>") {
		t.Errorf("terminal output: %q", tty.String())
	}
	want := "v1: Pulling from app\naaaaaaaaaaaa: Pulling fs layer\nbbbbbbbbbbbb: Pulling fs layer\naaaaaaaaaaaa: Downloading\naaaaaaaaaaaa: Pull complete\n"
	if plain.String() != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", plain.String(), want)
	}
}
