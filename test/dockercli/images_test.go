// Package dockercli drives berthd with the real docker CLI (a client-only
// install on this machine), as a user would.
package dockercli

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/test/registry"
)

// daemon is a berthd started for one test, with its own socket, data
// root and exec root (so its own berth-monitor).
type daemon struct {
	sock string
	dir  string
	bin  string
	cmd  *exec.Cmd
	done chan struct{}
	logf *os.File
}

// startDaemon builds berthd and berth-monitor, starts berthd, and at the
// end of the test removes every container left, stops berthd and makes
// sure its monitor is gone (ending it by its PID if it lingers).
func startDaemon(t *testing.T) *daemon {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: berthd unpacks images with their owners and mounts overlays")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("the docker CLI is not installed")
	}
	bin := buildDaemon(t)
	dir := t.TempDir()
	d := &daemon{sock: filepath.Join(dir, "berth.sock"), dir: dir, bin: bin}
	logf, err := os.Create(filepath.Join(dir, "berthd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.logf = logf
	d.start(t)
	t.Cleanup(func() {
		if d.cmd != nil {
			if out, _ := d.docker("ps", "-aq"); strings.TrimSpace(out) != "" {
				d.docker(append([]string{"rm", "-f"}, strings.Fields(out)...)...)
			}
		}
		d.stop()
		d.endMonitor(t)
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("berthd log:\n%s", b)
			b, _ = os.ReadFile(filepath.Join(dir, "exec", "monitor", "monitor.log"))
			t.Logf("monitor log:\n%s", b)
		}
	})
	return d
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// buildDaemon builds berthd and berth-monitor (side by side, as berthd
// expects) once for the package's tests.
func buildDaemon(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "berthd-test-bin-"); buildErr != nil {
			return
		}
		for _, b := range []string{"berthd", "berth-monitor"} {
			if out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, b), "github.com/berth-project/berth/cmd/"+b).CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s: %v\n%s", b, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "berthd")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// start runs berthd and waits for its socket.
func (d *daemon) start(t *testing.T) {
	t.Helper()
	d.cmd = exec.Command(d.bin, "-H", "unix://"+d.sock, "--data-root", filepath.Join(d.dir, "data"),
		"--exec-root", filepath.Join(d.dir, "exec"), "--pidfile", filepath.Join(d.dir, "berthd.pid"),
		"--config-file", "/dev/null", "--log-level", "debug")
	d.cmd.Stdout, d.cmd.Stderr = d.logf, d.logf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(d.cmd, d.done)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", d.sock); err == nil {
			c.Close()
			return
		}
		select {
		case <-d.done:
			t.Fatal("berthd exited at start (see its log)")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("berthd did not open its socket")
		}
	}
}

// stop ends berthd with SIGINT (SIGKILL after 10 s).
func (d *daemon) stop() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
	d.cmd = nil
}

// kill9 ends berthd with SIGKILL, as a crash would.
func (d *daemon) kill9() {
	d.cmd.Process.Kill()
	<-d.done
	d.cmd = nil
}

// monitorPid is the pid of the daemon's berth-monitor, 0 if none.
func (d *daemon) monitorPid() int {
	b, err := os.ReadFile(filepath.Join(d.dir, "exec", "monitor", "monitor.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// endMonitor waits for the monitor to exit by itself (it does, idle and
// alone) and kills it by its PID if it does not.
func (d *daemon) endMonitor(t *testing.T) {
	pid := d.monitorPid()
	if pid == 0 {
		return
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
	}
	t.Errorf("berth-monitor %d did not exit once idle; killing it", pid)
	syscall.Kill(pid, syscall.SIGKILL)
}

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
