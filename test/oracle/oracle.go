// Package oracle starts Debian's dockerd (docker.io) for tests that
// compare Berth with it or need it beside Berth. dockerd is a test tool
// only: it runs on its own socket, data root and exec root, in a network
// namespace (its own, or one the test names), and everything it made is
// removed when the test ends.
package oracle

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Dockerd is a running dockerd.
type Dockerd struct {
	Sock string // its API socket
	Dir  string // its data, exec root and log
	cfg  string // DOCKER_CONFIG for the CLI
}

// Docker runs the docker CLI against the daemon and returns its output
// (stdout, then stderr) and exit code.
func (d *Dockerd) Docker(stdin string, args ...string) (string, int) {
	return CLI(d.Sock, d.cfg, stdin, args...)
}

// CLI runs the docker CLI against the daemon at sock (classic builder,
// DOCKER_CONFIG cfg) and returns its output (stdout, then stderr) and
// exit code; -1 when it could not run.
func CLI(sock, cfg, stdin string, args ...string) (string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+cfg, "DOCKER_BUILDKIT=0")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		return err.Error(), -1
	}
	return out.String() + errb.String(), code
}

// Start starts dockerd in a network namespace of its own (netns "") or in
// the one at netns (a /proc/PID/ns/net path): there it sets the iptables
// FORWARD policy to DROP and loads br_netfilter's hooks, as on a host
// where Docker runs. Without dockerd the test is skipped, unless
// BERTH_ORACLES=required (CI installs docker.io and sets it). extra are
// more dockerd flags.
func Start(t *testing.T, netns string, extra ...string) *Dockerd {
	t.Helper()
	if _, err := exec.LookPath("dockerd"); err != nil {
		if os.Getenv("BERTH_ORACLES") == "required" {
			t.Fatal("dockerd (Debian docker.io) is not installed: it is this test's oracle")
		}
		t.Skip("dockerd (Debian docker.io) is not installed: apt-get install docker.io to run this test")
	}
	dir, err := os.MkdirTemp("", "berth-oracle-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &Dockerd{Sock: filepath.Join(dir, "docker.sock"), Dir: dir, cfg: filepath.Join(dir, "cli")}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	// The flags after the script are dockerd's extra ones; $D is dir.
	run := `exec dockerd -H "unix://$D/docker.sock" --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/docker.pid" --config-file "$D/daemon.json" "$@"`
	var cmd *exec.Cmd
	if netns == "" {
		cmd = exec.Command("unshare", append([]string{"-n", "sh", "-c", "ip link set lo up && " + run, "sh"}, extra...)...)
	} else {
		cmd = exec.Command("busybox", append([]string{"nsenter", "--net=" + netns, "sh", "-c", run, "sh"}, extra...)...)
	}
	cmd.Env = append(os.Environ(), "D="+dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		if out, code := d.Docker("", "ps", "-aq"); code == 0 && strings.TrimSpace(out) != "" {
			d.Docker("", append([]string{"rm", "-f", "-v"}, strings.Fields(out)...)...)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("dockerd log (tail):\n%s", tail(string(b), 40))
		}
		unmountUnder(dir)
		os.RemoveAll(dir)
	})
	for i := 0; ; i++ {
		if _, code := d.Docker("", "version"); code == 0 {
			break
		}
		select {
		case <-done:
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("dockerd exited:\n%s", tail(string(b), 40))
		default:
		}
		if i == 300 {
			t.Fatal("dockerd did not answer in 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return d
}

// unmountUnder lazily unmounts every mount below dir, deepest first.
func unmountUnder(dir string) {
	raw, _ := os.ReadFile("/proc/self/mounts")
	var ms []string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
			ms = append(ms, f[1])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ms)))
	for _, m := range ms {
		syscall.Unmount(m, syscall.MNT_DETACH)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
