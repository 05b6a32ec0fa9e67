// Package dockerparity runs the same docker CLI commands against Debian's
// dockerd (docker.io, the oracle) and against berthd, and compares exit
// codes and output. dockerd is a comparison oracle only: it runs in a
// network namespace of its own, on its own socket, data root and exec
// root, and everything it made is removed when the test ends.
package dockerparity

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// target is one engine the docker CLI drives.
type target struct {
	name string
	sock string
	cfg  string // DOCKER_CONFIG
}

// docker runs the docker CLI against tg and returns its output (stdout,
// then stderr) and exit code.
func (tg *target) docker(stdin string, args ...string) (string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+tg.sock, "DOCKER_CONFIG="+tg.cfg, "DOCKER_BUILDKIT=0")
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

// startDockerd starts Debian's dockerd as the oracle. Without dockerd the
// test is skipped, unless BERTH_ORACLES=required (CI installs docker.io
// and sets it).
func startDockerd(t *testing.T) *target {
	t.Helper()
	if _, err := exec.LookPath("dockerd"); err != nil {
		if os.Getenv("BERTH_ORACLES") == "required" {
			t.Fatal("dockerd (Debian docker.io) is not installed: it is this test's oracle")
		}
		t.Skip("dockerd (Debian docker.io) is not installed: apt-get install docker.io to run the differential tests")
	}
	dir, err := os.MkdirTemp("", "berth-parity-dockerd-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tg := &target{name: "dockerd", sock: filepath.Join(dir, "docker.sock"), cfg: filepath.Join(dir, "cli")}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	// Its own network namespace: docker0, its iptables chains and its
	// FORWARD policy stay there.
	cmd := exec.Command("unshare", "-n", "sh", "-c",
		`ip link set lo up && exec dockerd -H "unix://$1/docker.sock" --data-root "$1/data" --exec-root "$1/exec" --pidfile "$1/docker.pid" --config-file "$1/daemon.json"`,
		"sh", dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		if out, code := tg.docker("", "ps", "-aq"); code == 0 && strings.TrimSpace(out) != "" {
			tg.docker("", append([]string{"rm", "-f", "-v"}, strings.Fields(out)...)...)
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
		if _, code := tg.docker("", "version"); code == 0 {
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
	return tg
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

var (
	longID  = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	shortID = regexp.MustCompile(`\b[0-9a-f]{12}\b`)
)

// normalise makes two engines' outputs comparable: container and image
// ids become placeholders.
func normalise(s string) string {
	s = longID.ReplaceAllString(s, "<ID>")
	s = shortID.ReplaceAllString(s, "<id>")
	return strings.TrimRight(s, "\n")
}

// result is one step's outcome on one engine.
type result struct {
	out  string
	code int
}

func (r result) String() string { return fmt.Sprintf("exit %d: %q", r.code, r.out) }
