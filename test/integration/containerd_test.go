package integration

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/registry"
)

// crictlVersion is the cri-tools release whose crictl drives the CRI
// tests; scripts/deps.sh installs it where crictlPath looks.
const crictlVersion = "v1.37.0"

func crictlPath(t *testing.T) string {
	t.Helper()
	p := filepath.Join("/var/tmp/berth-tools", "crictl-"+crictlVersion, "crictl")
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("BERTH_ORACLES") == "required" {
			t.Fatalf("crictl %s is not installed at %s (scripts/deps.sh installs it)", crictlVersion, p)
		}
		t.Skipf("crictl is not installed at %s: scripts/deps.sh installs it", p)
	}
	return p
}

// Debian's containerd with berth-runtime as a runtime handler beside runc
// (the README's snippet): the same pod and container through crictl under
// both handlers, with the same outcome — the container's output, exec,
// the exit code a stop gives, and nothing left behind.
func TestContainerdHandlerAsRunc(t *testing.T) {
	harness.RequireRoot(t)
	runc := harness.Runc(t)
	crictl := crictlPath(t)
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
	dir := t.TempDir()
	sock := filepath.Join(dir, "containerd.sock")
	cgroupParent := fmt.Sprintf("/bt-cri%d", os.Getpid()%100000)
	// Pod networking through Debian's CNI plugins: a bridge of the test's
	// own, addresses from host-local, no masquerading. containerd runs in
	// a network namespace of the test's own, so that the bridge, its
	// routes and the forwarding the bridge plugin turns on stay there.
	bridge := fmt.Sprintf("bt-cri%d", os.Getpid()%100000)
	subnet := fmt.Sprintf("10.231.%d.0/24", os.Getpid()%200)
	os.MkdirAll(filepath.Join(dir, "cni-conf"), 0o755)
	writeJSON(t, filepath.Join(dir, "cni-conf", "10-berth-test.conflist"), map[string]any{
		"cniVersion": "0.4.0", "name": "berth-test",
		"plugins": []any{map[string]any{"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false,
			"ipam": map[string]any{"type": "host-local", "subnet": subnet, "dataDir": filepath.Join(dir, "cni-ipam")}}},
	})
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "berth.test/pause:1"
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
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.berth.options]
        BinaryName = %q
        Root = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, filepath.Join(dir, "cni-conf"),
		runc, filepath.Join(dir, "runc-state"), harness.RuntimeBin(), filepath.Join(dir, "berth-state"))
	// (containerd 1.6 puts its shims' sockets under /run/containerd/s
	// whatever its state directory, as the dockerd oracle's containerd
	// does: the shims remove their sockets; the directory, shared with a
	// dockerd test that may run at the same time, stays.)
	cfgPath := filepath.Join(dir, "config.toml")
	os.WriteFile(cfgPath, []byte(config), 0o644)
	logf, _ := os.Create(filepath.Join(dir, "containerd.log"))
	defer logf.Close()
	daemon := exec.Command("unshare", "--net", "sh", "-c", `ip link set lo up && exec "$0" "$@"`, ctd, "--config", cfgPath)
	daemon.Stdout, daemon.Stderr = logf, logf
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		daemon.Process.Kill()
		daemon.Wait()
		// Shims the pods left (a failed test) are ended by pid; then the
		// pods' cgroup parent and the mounts under the test's directory go.
		killUsing(sock)
		for _, c := range cgroupDirs(cgroupParent) {
			os.Remove(c)
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
			t.Logf("containerd's log (tail):\n%s", tail(string(b), 40))
		}
	})
	cri := func(args ...string) (string, error) {
		// In containerd's network namespace: exec and logs stream from a
		// server on its loopback.
		cmd := exec.Command("nsenter", append([]string{fmt.Sprintf("--net=/proc/%d/ns/net", daemon.Process.Pid), crictl,
			"--runtime-endpoint", "unix://" + sock, "--timeout", "30s"}, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			err = fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
		}
		return strings.TrimSpace(string(out)), err
	}
	for i := 0; ; i++ {
		if _, err := cri("info"); err == nil {
			break
		} else if i == 100 {
			t.Fatalf("containerd did not answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The images, imported as a node's administrator would: a pause image
	// (a long sleep) and busybox.
	for ref, cmd := range map[string][]string{"berth.test/pause:1": {"/bin/sleep", "1000000"}, "berth.test/busybox:1": {"sh"}} {
		img := registry.Image(t, "amd64", cmd, registry.Layer(t, registry.BusyboxTar(t), "gzip"))
		tag, _ := name.NewTag(ref)
		p := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
		if err := tarball.WriteToFile(p, tag, img); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("ctr", "-a", sock, "-n", "k8s.io", "images", "import", p).CombinedOutput(); err != nil {
			t.Fatalf("ctr import %s: %v: %s", ref, err, out)
		}
	}

	type outcome struct{ logs, exec, exitCode, web string }
	run := func(handler string) outcome {
		var o outcome
		pod := map[string]any{
			"metadata":      map[string]any{"name": "pod-" + handler, "namespace": "default", "uid": "uid-" + handler},
			"log_directory": filepath.Join(dir, "logs", handler),
			"linux":         map[string]any{"cgroup_parent": cgroupParent},
		}
		ctr := map[string]any{
			"metadata": map[string]any{"name": "c"},
			"image":    map[string]any{"image": "berth.test/busybox:1"},
			"command":  []string{"sh", "-c", "echo hello from $(hostname); httpd -p 8080 -h /etc; trap 'exit 3' TERM; sleep 1000 & wait"},
			"log_path": "c.log",
		}
		podPath, ctrPath := filepath.Join(dir, handler+"-pod.json"), filepath.Join(dir, handler+"-ctr.json")
		writeJSON(t, podPath, pod)
		writeJSON(t, ctrPath, ctr)
		podID, err := cri("runp", "--runtime", handler, podPath)
		if err != nil {
			t.Fatalf("%s: runp: %v: %s", handler, err, podID)
		}
		defer func() {
			cri("stopp", podID)
			if out, err := cri("rmp", podID); err != nil {
				t.Errorf("%s: rmp: %v: %s", handler, err, out)
			}
		}()
		id, err := cri("create", podID, ctrPath, podPath)
		if err != nil {
			t.Fatalf("%s: create: %v: %s", handler, err, id)
		}
		if out, err := cri("start", id); err != nil {
			t.Fatalf("%s: start: %v: %s", handler, err, out)
		}
		for i := 0; i < 50 && !strings.Contains(o.logs, "hello"); i++ {
			o.logs, _ = cri("logs", id)
			time.Sleep(100 * time.Millisecond)
		}
		o.exec, _ = cri("exec", id, "sh", "-c", "echo exec ok; id -u")
		// The pod's address, from CNI, reached from containerd's network
		// namespace (where the bridge is).
		ip, err := cri("inspectp", "--output", "go-template", "--template", "{{.status.network.ip}}", podID)
		if err != nil || !strings.HasPrefix(ip, strings.TrimSuffix(subnet, "0/24")) {
			t.Errorf("%s: the pod's address %q (%v), want one in %s", handler, ip, err, subnet)
		}
		for i := 0; i < 50 && o.web == ""; i++ {
			out, err := exec.Command("nsenter", fmt.Sprintf("--net=/proc/%d/ns/net", daemon.Process.Pid),
				"busybox", "wget", "-q", "-O-", "http://"+net.JoinHostPort(ip, "8080")+"/group").Output()
			if err == nil {
				o.web = string(out)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if out, err := cri("stop", "--timeout", "10", id); err != nil {
			t.Errorf("%s: stop: %v: %s", handler, err, out)
		}
		st, _ := cri("inspect", "--output", "go-template", "--template", "{{.status.exitCode}}", id)
		o.exitCode = st
		if out, err := cri("rm", id); err != nil {
			t.Errorf("%s: rm: %v: %s", handler, err, out)
		}
		return o
	}
	want, got := run("runc"), run("berth")
	t.Logf("runc: %+v\nberth: %+v", want, got)
	if want.logs != got.logs || !strings.Contains(got.logs, "hello from") {
		t.Errorf("logs: runc %q, berth-runtime %q", want.logs, got.logs)
	}
	if want.exec != got.exec || !strings.HasPrefix(got.exec, "exec ok") {
		t.Errorf("exec: runc %q, berth-runtime %q", want.exec, got.exec)
	}
	if want.web != got.web || !strings.Contains(got.web, "root:x:0:") {
		t.Errorf("the pod's web server: runc %q, berth-runtime %q", want.web, got.web)
	}
	if want.exitCode != got.exitCode {
		t.Errorf("exit code after stop: runc %q, berth-runtime %q", want.exitCode, got.exitCode)
	}
	// Pods and containers removed: no cgroup under the pods' parent, no
	// container in either runtime's state.
	for _, c := range cgroupDirs(cgroupParent) {
		if filepath.Base(c) != filepath.Base(cgroupParent) {
			t.Errorf("cgroup left: %s", c)
		}
	}
	for _, root := range []string{"runc-state", "berth-state"} {
		if ents, _ := os.ReadDir(filepath.Join(dir, root, "k8s.io")); len(ents) > 0 {
			t.Errorf("%s: %d containers left", root, len(ents))
		}
	}
}

// killUsing kills, by pid, every process whose command line names s (the
// shims of a containerd the test ran, and their containers' processes
// die with their namespaces).
func killUsing(s string) {
	harness.KillProcesses(func(pid int) bool {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		return err == nil && strings.Contains(string(b), s)
	})
}

func writeJSON(t *testing.T, p string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// cgroupDirs lists path under every cgroup hierarchy that has it, the
// deepest first.
func cgroupDirs(path string) []string {
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

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
