// Package berthd starts berthd for tests: built once per test binary (with
// berth-monitor beside it), one daemon per test on its own socket, data
// root and exec root, and everything it made removed at the end (every
// container, the daemon, its monitor). Needs root; Start skips otherwise.
package berthd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/network"
	"github.com/berth-project/berth/test/harness"
)

// Daemon is a berthd started for one test, with its own socket, data
// root and exec root (so its own berth-monitor).
type Daemon struct {
	Sock string // the API socket
	Dir  string // holds data/ (unless DataRoot is elsewhere), exec/ and the logs
	// DataRoot is berthd's --data-root: Dir/data, or where StartOn put it.
	DataRoot string
	// CgroupParent holds this daemon's container cgroups alone.
	CgroupParent string
	bin          string
	cmd          *exec.Cmd
	// holder keeps the daemon's network namespace alive across restarts.
	holder *exec.Cmd
	done   chan struct{}
	logf   *os.File
	args   []string // more flags, after the test's own
	// sharedNetns: holder is another daemon's (StartBeside).
	sharedNetns bool
}

// Start builds berthd and berth-monitor, starts berthd, and at the
// end of the test removes every container left, stops berthd and makes
// sure its monitor is gone (ending it by its PID if it lingers).
func Start(t *testing.T) *Daemon {
	t.Helper()
	return StartOn(t, "")
}

// StartOn is Start with the data root at dataRoot (a filesystem the test
// made, say); "" is Dir/data.
func StartOn(t *testing.T, dataRoot string) *Daemon {
	t.Helper()
	return StartWith(t, dataRoot)
}

// StartWith is StartOn with more berthd flags (say, -H tcp://… --tlsverify).
func StartWith(t *testing.T, dataRoot string, args ...string) *Daemon {
	t.Helper()
	return start(t, dataRoot, nil, args)
}

// StartBeside starts a second daemon in the network namespace of other,
// as two daemons on one host: with its own data root, exec root and
// socket, and args.
func StartBeside(t *testing.T, other *Daemon, args ...string) *Daemon {
	t.Helper()
	return start(t, "", other, args)
}

func start(t *testing.T, dataRoot string, beside *Daemon, args []string) *Daemon {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: berthd unpacks images with their owners and mounts overlays")
	}
	bin := buildDaemon(t)
	dir := t.TempDir()
	// As /run/berth: searchable by the root of a user-namespaced
	// container, which the runtime mounts its root filesystem as.
	for _, p := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(p, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	if dataRoot == "" {
		dataRoot = filepath.Join(dir, "data")
	}
	d := &Daemon{Sock: filepath.Join(dir, "berth.sock"), Dir: dir, DataRoot: dataRoot, bin: bin, CgroupParent: "/berth-test-" + randomHex(), args: args}
	logf, err := os.Create(filepath.Join(dir, "berthd.log"))
	if err != nil {
		t.Fatal(err)
	}
	d.logf = logf
	if beside != nil {
		d.holder, d.sharedNetns = beside.holder, true
	} else {
		d.startHolder(t)
	}
	d.Start(t)
	t.Cleanup(func() {
		if d.cmd != nil {
			d.removeAll(t)
		}
		d.Stop()
		d.endMonitor(t)
		d.removeCgroupParent(t)
		if !d.sharedNetns {
			d.holder.Process.Kill()
			d.holder.Wait()
		}
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
		if out, err := exec.Command("gcc", "-O2", "-static", "-o", filepath.Join(binDir, "berth-init"), filepath.Join(repoRoot(), "cmd", "berth-init", "berth-init.c")).CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build berth-init: %v\n%s", err, out)
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

// Main runs a package's tests and removes the binaries built for them,
// with the read-only mount the monitor's containers ran it from; call it
// from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// Cleanup removes the binaries built for the package's tests, for a
// package whose TestMain is another harness's (harness.Main).
func Cleanup() {
	if binDir != "" {
		container.RemoveExeMount(filepath.Join(binDir, "berth-monitor"))
		os.RemoveAll(binDir)
	}
}

// Start runs berthd and waits for its socket.
func (d *Daemon) Start(t *testing.T) {
	t.Helper()
	d.cmd = exec.Command("busybox", "nsenter", "--net="+d.Netns(), d.bin, "-H", "unix://"+d.Sock, "--data-root", d.DataRoot,
		"--exec-root", filepath.Join(d.Dir, "exec"), "--pidfile", filepath.Join(d.Dir, "berthd.pid"),
		"--config-file", "/dev/null", "--log-level", "debug", "--cgroup-parent", d.CgroupParent)
	d.cmd.Args = append(d.cmd.Args, d.args...)
	d.cmd.Stdout, d.cmd.Stderr = d.logf, d.logf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(d.cmd, d.done)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("unix", d.Sock); err == nil {
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

// startHolder starts the process that holds the daemon's own network
// namespace (loopback up): berthd runs in it, so the bridges, veths,
// nftables rules and sysctls it makes are the test's alone, and a
// restarted berthd finds them again.
func (d *Daemon) startHolder(t *testing.T) {
	t.Helper()
	d.holder = exec.Command("busybox", "sh", "-c", "ip link set lo up && exec sleep 100000")
	d.holder.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNET}
	if err := d.holder.Start(); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		// Up once the shell has exec'ed sleep.
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", d.holder.Process.Pid)); strings.TrimSpace(string(b)) == "sleep" {
			return
		}
		if i == 200 {
			t.Fatal("the network namespace holder did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Netns is the path of the daemon's network namespace.
func (d *Daemon) Netns() string { return fmt.Sprintf("/proc/%d/ns/net", d.holder.Process.Pid) }

// InNetns runs a command in the daemon's network namespace (as the host
// of its containers) and returns its combined output.
func (d *Daemon) InNetns(args ...string) (string, error) {
	out, err := exec.Command("busybox", append([]string{"nsenter", "--net=" + d.Netns()}, args...)...).CombinedOutput()
	return string(out), err
}

// Forward makes hostAddr ("127.0.0.1:port", a service of the test on
// the real loopback, such as a registry) reachable at the same address in
// the daemon's network namespace, until the test ends: a listener is
// opened there and each connection is relayed from the test's side.
func (d *Daemon) Forward(t *testing.T, hostAddr string) {
	t.Helper()
	var l net.Listener
	err := network.RunIn(d.Netns(), func() (err error) {
		l, err = net.Listen("tcp4", hostAddr)
		return err
	})
	if err != nil {
		t.Fatalf("forward %s into the daemon's namespace: %v", hostAddr, err)
	}
	t.Cleanup(func() { l.Close() })
	go harness.Relay(l, hostAddr)
}

// Stop ends berthd with SIGINT (SIGKILL after 10 s).
func (d *Daemon) Stop() {
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

// Kill9 ends berthd with SIGKILL, as a crash would.
func (d *Daemon) Kill9() {
	d.cmd.Process.Kill()
	<-d.done
	d.cmd = nil
}

// MonitorPid is the pid of the daemon's berth-monitor, 0 if none.
func (d *Daemon) MonitorPid() int {
	b, err := os.ReadFile(filepath.Join(d.Dir, "exec", "monitor", "monitor.pid"))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// endMonitor waits for the monitor to exit by itself (it does, idle and
// alone) and kills it by its PID if it does not.
func (d *Daemon) endMonitor(t *testing.T) {
	pid := d.MonitorPid()
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

// Docker runs the docker CLI against the daemon and returns its combined
// output.
func (d *Daemon) Docker(args ...string) (string, error) {
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.Sock, "DOCKER_CONFIG="+filepath.Join(d.Dir, "docker-config"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Binary is the berthd executable the tests run.
func (d *Daemon) Binary() string { return d.bin }

// Pid is berthd's pid (0 when stopped).
func (d *Daemon) Pid() int {
	if d.cmd == nil {
		return 0
	}
	return d.cmd.Process.Pid
}

// removeAll force-removes every container, through the API.
func (d *Daemon) removeAll(t *testing.T) {
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", d.Sock)
	}}}
	var list []struct{ Id string }
	// The Docker API's containers, then the CRI's (which the plain list
	// leaves out).
	for _, q := range []string{"all=1", "all=1&filters=" + url.QueryEscape(`{"namespace":{"k8s.io":true}}`)} {
		resp, err := c.Get("http://berthd/containers/json?" + q)
		if err != nil {
			t.Errorf("list containers: %v", err)
			return
		}
		var some []struct{ Id string }
		json.NewDecoder(resp.Body).Decode(&some)
		resp.Body.Close()
		list = append(list, some...)
	}
	for _, ctr := range list {
		req, _ := http.NewRequest(http.MethodDelete, "http://berthd/containers/"+ctr.Id+"?force=1", nil)
		if resp, err := c.Do(req); err == nil {
			resp.Body.Close()
		}
	}
}

// repoRoot is the module's root directory.
func repoRoot() string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "."
	}
	return strings.TrimSpace(string(out))
}

func randomHex() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// removeCgroupParent removes the daemon's cgroup parent from every
// hierarchy; one still holding a cgroup is a leak, reported.
func (d *Daemon) removeCgroupParent(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", d.CgroupParent))
	if dir := filepath.Join("/sys/fs/cgroup", d.CgroupParent); fileExists(dir) {
		dirs = append(dirs, dir)
	}
	for _, dir := range dirs {
		if err := syscall.Rmdir(dir); err != nil && !os.IsNotExist(err) {
			t.Errorf("cgroup %s left behind: %v", dir, err)
		}
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Build builds berthd and berth-monitor (once) and returns berthd's path;
// berth-monitor and berth-init are beside it.
func Build(t *testing.T) string {
	t.Helper()
	return buildDaemon(t)
}
