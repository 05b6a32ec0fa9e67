// Package dockercli drives berthd with the real docker CLI (a client-only
// install on this machine), as a user would.
package dockercli

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/test/berthd"
	"github.com/berth-project/berth/test/registry"
)

// daemon is a berthd for one test, driven with the docker CLI.
type daemon struct {
	*berthd.Daemon
	sock, dir string
}

func startDaemon(t *testing.T) *daemon {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("the docker CLI is not installed")
	}
	d := berthd.Start(t)
	return &daemon{Daemon: d, sock: d.Sock, dir: d.Dir}
}

func (d *daemon) start(t *testing.T) { d.Start(t) }
func (d *daemon) stop()              { d.Stop() }
func (d *daemon) kill9()             { d.Kill9() }
func (d *daemon) monitorPid() int    { return d.MonitorPid() }

func TestMain(m *testing.M) { berthd.Main(m) }

// docker runs the docker CLI against the daemon.
func (d *daemon) docker(args ...string) (string, error) {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "DOCKER_CONFIG="+filepath.Join(d.dir, "docker-config"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (d *daemon) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := d.docker(args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// get does a raw API request.
func (d *daemon) get(t *testing.T, path string) (int, map[string]any) {
	t.Helper()
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return net.Dial("unix", d.sock)
	}}}
	resp, err := c.Get("http://berthd" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestVersionAndNegotiation(t *testing.T) {
	d := startDaemon(t)
	if out := d.must(t, "version", "--format", "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}"); strings.TrimSpace(out) != "1.50 1.24 linux" {
		t.Errorf("version: %q", out)
	}
	if out := d.must(t, "info", "--format", "{{.OSType}} {{.Driver}} {{.CgroupDriver}}"); strings.TrimSpace(out) != "linux overlay2 cgroupfs" {
		t.Errorf("info: %q", out)
	}
	code, body := d.get(t, "/v1.20/version")
	if code != http.StatusBadRequest || !strings.Contains(body["message"].(string), "client version 1.20 is too old. Minimum supported API version is 1.24") {
		t.Errorf("old client: %d %v", code, body)
	}
	if code, _ := d.get(t, "/v1.24/version"); code != http.StatusOK {
		t.Errorf("oldest supported version: %d", code)
	}
}

func TestImageLifecycleWithDockerCLI(t *testing.T) {
	d := startDaemon(t)
	reg := registry.Start(t, registry.Options{})
	d.Forward(t, reg.Host)
	ref := reg.Ref("library/busybox:1.36")
	reg.Push(t, "library/busybox:1.36", registry.Image(t, "amd64", []string{"sh"}, registry.Layer(t, registry.BusyboxTar(t), "gzip")))

	out := d.must(t, "pull", ref)
	for _, want := range []string{"Pull complete", "Digest: sha256:", "Status: Downloaded newer image for " + ref} {
		if !strings.Contains(out, want) {
			t.Errorf("pull output lacks %q:\n%s", want, out)
		}
	}
	if out := d.must(t, "pull", ref); !strings.Contains(out, "Status: Image is up to date for "+ref) {
		t.Errorf("second pull:\n%s", out)
	}
	d.must(t, "tag", ref, "mybox:1")
	if out := d.must(t, "images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, "mybox:1") || !strings.Contains(out, ref) {
		t.Errorf("images:\n%s", out)
	}
	// Filters: by reference (docker images NAME), dangling, and an unknown one.
	if out := d.must(t, "images", "--format", "{{.Repository}}:{{.Tag}}", "mybox"); strings.TrimSpace(out) != "mybox:1" {
		t.Errorf("images mybox: %q", out)
	}
	if out := d.must(t, "images", "-q", "-f", "dangling=true"); strings.TrimSpace(out) != "" {
		t.Errorf("dangling images: %q", out)
	}
	if out, err := d.docker("images", "-f", "bogus=1"); err == nil || !strings.Contains(out, "invalid filter 'bogus'") {
		t.Errorf("unknown filter: %v %s", err, out)
	}
	if out := d.must(t, "image", "inspect", "--format", "{{json .Config.Cmd}} {{.Os}}", "mybox:1"); strings.TrimSpace(out) != `["sh"] linux` {
		t.Errorf("inspect: %q", out)
	}
	d.must(t, "image", "history", "mybox:1")

	archive := filepath.Join(t.TempDir(), "mybox.tar")
	d.must(t, "save", "-o", archive, "mybox:1")
	if out := d.must(t, "rmi", "mybox:1", ref); !strings.Contains(out, "Deleted: sha256:") {
		t.Errorf("rmi:\n%s", out)
	}
	if out := d.must(t, "images", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("images after rmi: %q", out)
	}
	if out := d.must(t, "load", "-i", archive); !strings.Contains(out, "Loaded image: mybox:1") {
		t.Errorf("load:\n%s", out)
	}
	if out := d.must(t, "image", "prune", "-a", "-f"); !strings.Contains(out, "Total reclaimed space") {
		t.Errorf("prune:\n%s", out)
	}

	// Errors as the CLI prints them.
	if out, err := d.docker("rmi", "nosuch:1"); err == nil || !strings.Contains(out, "Error response from daemon: No such image: nosuch:1") {
		t.Errorf("rmi of a missing image: %v\n%s", err, out)
	}
	if out, err := d.docker("pull", reg.Ref("library/missing:1")); err == nil || !strings.Contains(out, "not found") {
		t.Errorf("pull of a missing image: %v\n%s", err, out)
	}
}

// TestPushWithDockerCLI: docker push of a built image to a registry with
// basic auth (docker login), its progress as dockerd's, the registry's
// view of it (skopeo), and a pull of it back into an empty store.
func TestPushWithDockerCLI(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	reg := registry.Start(t, registry.Options{User: "pusher", Password: "s3cret"})
	d.Forward(t, reg.Host)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN echo pushed > /pushed\nCMD [\"cat\", \"/pushed\"]\n"})
	ref := reg.Ref("team/app:1")
	if out, code := d.buildDocker(t, dir, "-q", "-t", ref); code != 0 {
		t.Fatalf("build: %s", out)
	}
	if out, err := d.docker("push", ref); err == nil || !strings.Contains(out, "denied") && !strings.Contains(out, "unauthorized") && !strings.Contains(out, "401") {
		t.Errorf("push without login: want a refusal naming auth: %v\n%s", err, out)
	}
	if out, err := d.docker("login", "-u", "pusher", "-p", "wrong", reg.Host); err == nil {
		t.Errorf("login with a wrong password succeeded:\n%s", out)
	}
	if out := d.must(t, "login", "-u", "pusher", "-p", "s3cret", reg.Host); !strings.Contains(out, "Login Succeeded") {
		t.Errorf("login: %s", out)
	}
	out := d.must(t, "push", ref)
	for _, want := range []string{"The push refers to repository [" + reg.Host + "/team/app]", ": Pushed", "1: digest: sha256:"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	if out := d.must(t, "push", ref); !strings.Contains(out, "Layer already exists") {
		t.Errorf("second push: want every layer already there:\n%s", out)
	}
	insp, err := exec.Command("skopeo", "inspect", "--tls-verify=false", "--creds", "pusher:s3cret", "docker://"+ref).CombinedOutput()
	if err != nil || !strings.Contains(string(insp), `"Layers"`) || strings.Count(string(insp), "sha256:") < 3 {
		t.Errorf("skopeo inspect of the pushed image: %v\n%s", err, insp)
	}
	d.must(t, "rmi", ref)
	d.must(t, "rmi", "busybox")
	if out := d.must(t, "run", "--rm", ref); !strings.Contains(out, "Pull complete") || !strings.HasSuffix(out, "\npushed\n") {
		t.Errorf("run of the image pulled back: %q", out)
	}
	if out, err := d.docker("push", reg.Ref("team/none:1")); err == nil || !strings.Contains(out, "An image does not exist locally with the tag: "+reg.Host+"/team/none") {
		t.Errorf("push of a missing image: %v\n%s", err, out)
	}
}
