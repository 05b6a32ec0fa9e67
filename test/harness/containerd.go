package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-project/berth/network"
)

// CriToolsVersion is the cri-tools release whose crictl and critest drive
// the CRI tests; scripts/deps.sh installs both under /var/tmp/berth-tools.
const CriToolsVersion = "v1.37.0"

// CriTool returns the path of crictl or critest as scripts/deps.sh
// installs them; missing, the test is skipped, or fails if oracles are
// required.
func CriTool(t testing.TB, tool string) string {
	t.Helper()
	p := filepath.Join("/var/tmp/berth-tools", tool+"-"+CriToolsVersion, tool)
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("BERTH_ORACLES") == "required" {
			t.Fatalf("%s %s is not installed at %s (scripts/deps.sh installs it)", tool, CriToolsVersion, p)
		}
		t.Skipf("%s is not installed at %s: scripts/deps.sh installs it", tool, p)
	}
	return p
}

// Containerd is Debian's containerd run for one test: its root, state,
// socket and CNI configuration in the test's directory, in a network
// namespace of its own (the pods' bridge, routes and forwarding stay
// there), with two runtime handlers of the runc shim — "runc" (Debian's
// runc) and "berth" (this run's berth-runtime) — each keeping its state
// in the test's directory. Everything it made is removed when the test
// ends.
type Containerd struct {
	Dir, Sock string
	// Pid is containerd's: /proc/Pid/ns/net is the pods' network side.
	Pid int
	// CgroupParent is a cgroup of the test's own for the pods.
	CgroupParent string
	// Subnet is the pods' CNI subnet, as "10.231.N.0/24".
	Subnet string
	crictl string
	sd     *Systemd
}

// ContainerdOptions change the daemon's configuration.
type ContainerdOptions struct {
	// SandboxImage is the pods' pause image (default berth.test/pause:1,
	// which the caller imports).
	SandboxImage string
	// Extra is TOML appended to the configuration (registry mirrors).
	Extra string
	// Systemd, if set, runs containerd in that systemd's container, with
	// both handlers on the systemd cgroup driver (SystemdCgroup = true).
	Systemd *Systemd
}

// StartContainerd starts containerd and waits until its CRI answers.
// Skipped without containerd, runc, crictl or the CNI plugins, unless
// oracles are required.
func StartContainerd(t testing.TB, o ContainerdOptions) *Containerd {
	t.Helper()
	RequireRoot(t)
	runc := Runc(t)
	crictl := CriTool(t, "crictl")
	ctd, err := exec.LookPath("containerd")
	if err != nil {
		if os.Getenv("BERTH_ORACLES") == "required" {
			t.Fatal("containerd (Debian's) is not installed")
		}
		t.Skip("containerd is not installed")
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		if os.Getenv("BERTH_ORACLES") == "required" {
			t.Fatal("Debian's CNI plugins (containernetworking-plugins) are not installed")
		}
		t.Skip("containernetworking-plugins is not installed")
	}
	if o.SandboxImage == "" {
		o.SandboxImage = "berth.test/pause:1"
	}
	dir := t.TempDir()
	n := os.Getpid() % 100000
	c := &Containerd{Dir: dir, Sock: filepath.Join(dir, "containerd.sock"), CgroupParent: fmt.Sprintf("/bt-cri%d", n),
		Subnet: fmt.Sprintf("10.231.%d.0/24", os.Getpid()%200), crictl: crictl, sd: o.Systemd}
	// Pod networking through Debian's CNI plugins: a bridge of the test's
	// own, addresses from host-local, no masquerading, host ports by
	// portmap (in containerd's namespace).
	os.MkdirAll(filepath.Join(dir, "cni-conf"), 0o755)
	WriteJSON(t, filepath.Join(dir, "cni-conf", "10-berth-test.conflist"), map[string]any{
		"cniVersion": "0.4.0", "name": "berth-test",
		"plugins": []any{
			map[string]any{"type": "bridge", "bridge": fmt.Sprintf("bt-cri%d", n), "isGateway": true, "ipMasq": false,
				"ipam": map[string]any{"type": "host-local", "subnet": c.Subnet, "dataDir": filepath.Join(dir, "cni-ipam")}},
			map[string]any{"type": "portmap", "capabilities": map[string]any{"portMappings": true}},
		},
	})
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = %q
        Root = %q
        SystemdCgroup = %[10]t
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth.options]
        BinaryName = %[8]q
        Root = %[9]q
        SystemdCgroup = %[10]t
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.Sock, o.SandboxImage, filepath.Join(dir, "cni-conf"),
		runc, filepath.Join(dir, "runc-state"), RuntimeBin(), filepath.Join(dir, "berth-state"), o.Systemd != nil) + o.Extra
	// (containerd 1.6 puts its shims' sockets under /run/containerd/s
	// whatever its state directory, as the dockerd oracle's containerd
	// does: the shims remove their sockets; the directory, shared with a
	// dockerd test that may run at the same time, stays.)
	cfgPath := filepath.Join(dir, "config.toml")
	os.WriteFile(cfgPath, []byte(config), 0o644)
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"unshare", "--net", "sh", "-c", `ip link set lo up && exec "$0" "$@"`, ctd, "--config", cfgPath}
	if o.Systemd != nil {
		args = append([]string{"nsenter", "-t", strconv.Itoa(o.Systemd.Pid), "-a"}, args...)
	}
	daemon := exec.Command(args[0], args[1:]...)
	daemon.Stdout, daemon.Stderr = logf, logf
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	c.Pid = daemon.Process.Pid
	if o.Systemd != nil {
		// nsenter forks containerd (after unshare and sh exec'd it).
		for i := 0; ; i++ {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", daemon.Process.Pid, daemon.Process.Pid))
			if f := strings.Fields(string(b)); len(f) > 0 {
				if comm, _ := os.ReadFile("/proc/" + f[0] + "/comm"); strings.TrimSpace(string(comm)) == "containerd" {
					c.Pid, _ = strconv.Atoi(f[0])
					break
				}
			}
			if i == 200 {
				t.Fatal("containerd did not start in systemd's container")
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
	t.Cleanup(func() {
		syscall.Kill(c.Pid, syscall.SIGKILL)
		daemon.Process.Kill()
		daemon.Wait()
		logf.Close()
		// Shims the pods left (a failed test) are ended by pid; then the
		// pods' cgroup parent and the mounts under the test's directory go.
		KillProcesses(func(pid int) bool {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			return err == nil && strings.Contains(string(b), c.Sock)
		})
		for _, d := range CgroupDirs(c.CgroupParent) {
			os.Remove(d)
		}
		if b, err := os.ReadFile("/proc/self/mounts"); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) > 1 && strings.HasPrefix(f[1], dir) {
					exec.Command("umount", "-l", f[1]).Run()
				}
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("containerd's log (tail):\n%s", Tail(string(b), 40))
		}
	})
	for i := 0; ; i++ {
		if _, err := c.CRI("info"); err == nil {
			break
		} else if i == 100 {
			t.Fatalf("containerd did not answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c
}

// InNetns runs name with args in containerd's network namespace.
func (c *Containerd) InNetns(name string, args ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{fmt.Sprintf("--net=/proc/%d/ns/net", c.Pid), name}, args...)...)
}

// OnNode runs name with args where containerd runs: its network
// namespace, and in systemd's container its mounts, IPC, UTS, PID and
// cgroup namespaces too (what a node's kubelet shares with it).
func (c *Containerd) OnNode(name string, args ...string) *exec.Cmd {
	if c.sd == nil {
		return c.InNetns(name, args...)
	}
	return exec.Command("nsenter", append([]string{"-t", strconv.Itoa(c.sd.Pid), "--mount", "--ipc", "--uts", "--pid", "--cgroup",
		fmt.Sprintf("--net=/proc/%d/ns/net", c.Pid), name}, args...)...)
}

// CRI runs crictl against containerd, in its network namespace (exec and
// logs stream from a server on its loopback), and returns its trimmed
// output.
func (c *Containerd) CRI(args ...string) (string, error) {
	cmd := c.InNetns(c.crictl, append([]string{"--runtime-endpoint", "unix://" + c.Sock, "--timeout", "30s"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(string(out)), err
}

// RunPod starts, under handler, the pod of the crictl config file podPath
// and in it the container of ctrPath, and returns their ids.
func (c *Containerd) RunPod(t testing.TB, handler, podPath, ctrPath string) (pod, ctr string) {
	t.Helper()
	return RunPod(t, handler, c.CRI, podPath, ctrPath, "--runtime", handler)
}

// RunPod starts, through crictl run by cri, the pod of the crictl config
// file podPath (runp with runpArgs) and in it the container of ctrPath,
// and returns their ids; label names the runtime in errors.
func RunPod(t testing.TB, label string, cri func(args ...string) (string, error), podPath, ctrPath string, runpArgs ...string) (pod, ctr string) {
	t.Helper()
	pod, err := cri(append(append([]string{"runp"}, runpArgs...), podPath)...)
	if err != nil {
		t.Fatalf("%s: runp: %v", label, err)
	}
	if ctr, err = cri("create", pod, ctrPath, podPath); err != nil {
		t.Fatalf("%s: create: %v", label, err)
	}
	if out, err := cri("start", ctr); err != nil {
		t.Fatalf("%s: start: %v: %s", label, err, out)
	}
	return pod, ctr
}

// Import loads img under ref into containerd's k8s.io namespace, as a
// node's administrator would with ctr.
func (c *Containerd) Import(t testing.TB, ref string, img v1.Image) {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(c.Dir, strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ctr", "-a", c.Sock, "-n", "k8s.io", "images", "import", p).CombinedOutput(); err != nil {
		t.Fatalf("ctr import %s: %v: %s", ref, err, out)
	}
}

// Forward listens on addr in containerd's network namespace and relays
// each connection to target in the test's (a registry on the host's
// loopback, for pulls). It stops when the test ends.
func (c *Containerd) Forward(t testing.TB, addr, target string) {
	t.Helper()
	var l net.Listener
	err := network.RunIn(fmt.Sprintf("/proc/%d/ns/net", c.Pid), func() (err error) {
		l, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go Relay(l, target)
}

// Relay copies each connection l accepts to and from a connection to
// target, until l is closed.
func Relay(l net.Listener, target string) {
	for {
		in, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer in.Close()
			out, err := net.Dial("tcp", target)
			if err != nil {
				return
			}
			defer out.Close()
			go io.Copy(out, in)
			io.Copy(in, out)
		}()
	}
}

// WriteJSON writes v as JSON to p.
func WriteJSON(t testing.TB, p string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// CgroupDirs lists path under every cgroup hierarchy that has it, the
// deepest first.
func CgroupDirs(path string) []string {
	var out []string
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range ents {
		root := filepath.Join("/sys/fs/cgroup", e.Name(), path)
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				out = append([]string{p}, out...)
			}
			return nil
		})
	}
	return out
}

// Tail is the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
