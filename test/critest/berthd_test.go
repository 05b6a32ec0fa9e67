package critest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/test/berthd"
	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/registry"
)

// criNode is a berthd serving the CRI with pods on a CNI bridge of its
// network namespace, a busybox image pulled into it, and a gRPC client.
type criNode struct {
	bd      *berthd.Daemon
	sock    string
	rt      runtimeapi.RuntimeServiceClient
	img     runtimeapi.ImageServiceClient
	image   string // busybox's reference
	logs    string // the pods' log directory
	crictl  string
	cniConf string
}

// writeCNIConf writes, in dir/cni-conf, the pods' network: a bridge
// (made in the network namespace of the runtime that runs the plugins),
// addresses of subnet from host-local, host ports by portmap.
func writeCNIConf(t *testing.T, dir, bridge, subnet string) string {
	t.Helper()
	conf := filepath.Join(dir, "cni-conf")
	os.MkdirAll(conf, 0o755)
	harness.WriteJSON(t, filepath.Join(conf, "10-berthd-test.conflist"), map[string]any{
		"cniVersion": "0.4.0", "name": "berthd-test",
		"plugins": []any{
			map[string]any{"type": "bridge", "bridge": bridge, "isGateway": true, "ipMasq": false,
				"ipam": map[string]any{"type": "host-local", "subnet": subnet, "dataDir": filepath.Join(dir, "cni-ipam")}},
			map[string]any{"type": "portmap", "capabilities": map[string]any{"portMappings": true}},
		},
	})
	return conf
}

// CRI runs crictl against the node, in berthd's network namespace (where
// the streaming server is).
func (c *criNode) CRI(args ...string) (string, error) {
	cmd := exec.Command("busybox", append([]string{"nsenter", "--net=" + c.bd.Netns(), c.crictl, "--config", "/dev/null",
		"-r", "unix://" + c.sock, "-i", "unix://" + c.sock}, args...)...)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		err = fmt.Errorf("%w: %s", err, ee.Stderr)
	}
	return strings.TrimSpace(string(out)), err
}

func startCRINode(t *testing.T) *criNode {
	t.Helper()
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("Debian's CNI plugins (containernetworking-plugins) are not installed")
	}
	reg := registry.Start(t, registry.Options{})
	reg.Push(t, "busybox:latest", registry.Image(t, "amd64", []string{"sh"}, registry.Layer(t, registry.BusyboxTar(t), "gzip")))
	dir := t.TempDir()
	cniConf := writeCNIConf(t, dir, fmt.Sprintf("bt-bn%d", os.Getpid()%200), fmt.Sprintf("10.233.%d.0/24", os.Getpid()%200))
	c := &criNode{sock: filepath.Join(dir, "cri.sock"), logs: filepath.Join(dir, "pod-logs"), image: reg.Ref("busybox:latest"),
		crictl: harness.CriTool(t, "crictl"), cniConf: cniConf}
	c.bd = berthd.StartWith(t, "", "--cri-socket", c.sock, "--cni-conf-dir", cniConf, "--cni-bin-dir", "/usr/lib/cni")
	c.bd.Forward(t, reg.Host)
	conn, err := grpc.NewClient("unix://"+c.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c.rt, c.img = runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
	if _, err := c.img.PullImage(context.Background(), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: c.image}}); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *criNode) podConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: name + "-uid"},
		Hostname: name, LogDirectory: filepath.Join(c.logs, name),
		Linux: &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}}}}
}

func (c *criNode) runPod(t *testing.T, name string) (string, *runtimeapi.PodSandboxConfig) {
	t.Helper()
	cfg := c.podConfig(name)
	r, err := c.rt.RunPodSandbox(context.Background(), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return r.PodSandboxId, cfg
}

func (c *criNode) ctrConfig(name string, cmd ...string) *runtimeapi.ContainerConfig {
	// A PID namespace of its own, as the kubelet asks unless the pod
	// shares one.
	return &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: name}, Image: &runtimeapi.ImageSpec{Image: c.image},
		Command: cmd, LogPath: name + ".log", Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}}}}
}

func (c *criNode) startCtr(t *testing.T, pod string, pcfg *runtimeapi.PodSandboxConfig, cfg *runtimeapi.ContainerConfig) string {
	t.Helper()
	ctx := context.Background()
	r, err := c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: pcfg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: r.ContainerId}); err != nil {
		t.Fatal(err)
	}
	return r.ContainerId
}

// engineContainers lists berthd's CRI-made containers through the Docker
// API (names), as berth ps --filter namespace=k8s.io does.
func (c *criNode) engineContainers(t *testing.T) string {
	t.Helper()
	out, err := c.bd.Docker("ps", "-a", "--filter", "namespace=k8s.io", "--format", "{{.Names}}")
	if err != nil {
		t.Fatal(out, err)
	}
	return strings.TrimSpace(out)
}

func wantCode(t *testing.T, what string, err error, code codes.Code, text string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(fmt.Sprint(err), text) {
		t.Errorf("%s: got %v, want %v naming %q", what, err, code, text)
	}
}

// Bad input gets containerd's gRPC codes and leaves nothing behind; a pod
// removed while its container runs takes the container with it.
func TestBerthdCRIBadInput(t *testing.T) {
	c := startCRINode(t)
	ctx := context.Background()

	cfg := c.podConfig("badns")
	cfg.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode(9)
	_, err := c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	wantCode(t, "unknown network namespace mode", err, codes.InvalidArgument, "network namespace mode")
	_, err = c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: c.podConfig("badhandler"), RuntimeHandler: "kata"})
	wantCode(t, "unknown runtime handler", err, codes.NotFound, "kata")
	// A network that cannot be set up: the pod is refused, and its
	// container, pinned network namespace and state are gone.
	broken := filepath.Join(c.cniConf, "00-broken.conflist")
	harness.WriteJSON(t, broken, map[string]any{"cniVersion": "0.4.0", "name": "broken", "plugins": []any{map[string]any{"type": "no-such-plugin"}}})
	_, err = c.rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: c.podConfig("badnet")})
	wantCode(t, "a missing CNI plugin", err, codes.Unknown, "no-such-plugin")
	os.Remove(broken)
	if got := c.engineContainers(t); got != "" {
		t.Errorf("refused pods left containers: %s", got)
	}
	for _, d := range []string{filepath.Join(c.bd.Dir, "exec", "cri", "netns"), filepath.Join(c.bd.DataRoot, "cri", "sandboxes")} {
		if left, _ := os.ReadDir(d); len(left) > 0 {
			t.Errorf("refused pods left %s: %v", d, left)
		}
	}

	pod, pcfg := c.runPod(t, "p1")
	missing := c.ctrConfig("missing", "sh")
	missing.Image.Image = "no-such-image:1"
	_, err = c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: missing, SandboxConfig: pcfg})
	wantCode(t, "missing image", err, codes.NotFound, "no-such-image:1")
	seccomp := c.ctrConfig("seccomp", "sh")
	seccomp.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "/no/such/profile.json"}
	_, err = c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: pod, Config: seccomp, SandboxConfig: pcfg})
	wantCode(t, "missing seccomp profile", err, codes.InvalidArgument, "/no/such/profile.json")
	_, err = c.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: "0123456789ab", Config: c.ctrConfig("x", "sh"), SandboxConfig: pcfg})
	wantCode(t, "unknown pod", err, codes.NotFound, "0123456789ab")
	// Stop and remove are idempotent, as the CRI asks.
	if _, err := c.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: "0123456789ab"}); err != nil {
		t.Errorf("stop of an unknown pod: %v, want none (already stopped)", err)
	}
	if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: "0123456789ab"}); err != nil {
		t.Errorf("remove of an unknown pod: %v, want none (already removed)", err)
	}
	_, err = c.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: "0123456789ab"})
	wantCode(t, "status of an unknown pod", err, codes.NotFound, "0123456789ab")
	if got := c.engineContainers(t); strings.Count(got, "\n") != 0 || !strings.HasPrefix(got, "k8s_POD_p1") {
		t.Errorf("refused containers left something: %q", got)
	}

	// Removing a pod whose container runs removes both, cgroups and
	// network addresses too.
	ctr := c.startCtr(t, pod, pcfg, c.ctrConfig("sleeper", "sleep", "1000"))
	st, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: ctr, Verbose: true})
	if err != nil || st.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container: %v %v", st, err)
	}
	if _, err := c.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pod}); err != nil {
		t.Fatal(err)
	}
	if got := c.engineContainers(t); got != "" {
		t.Errorf("a removed pod left containers: %s", got)
	}
	if _, err := c.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: ctr}); status.Code(err) != codes.NotFound {
		t.Errorf("the removed pod's container: %v, want NotFound", err)
	}
	for _, d := range harness.CgroupDirs(c.bd.CgroupParent) {
		if entries, _ := os.ReadDir(d); len(subdirs(entries)) > 0 {
			t.Errorf("cgroups left under %s: %v", d, subdirs(entries))
		}
	}
	ipam, _ := filepath.Glob(filepath.Join(filepath.Dir(c.sock), "cni-ipam", "*", "10.*"))
	if len(ipam) > 0 {
		t.Errorf("pod addresses still held: %v", ipam)
	}
}

func subdirs(es []os.DirEntry) []string {
	var out []string
	for _, e := range es {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// A pod through crictl, as a user tries it: run, create, start, exec,
// logs in the CRI format, stats, stop, remove. Its containers are not in
// docker ps; a restarted berthd finds the pod running and serves it.
func TestBerthdCRIWithCrictl(t *testing.T) {
	c := startCRINode(t)
	run := func(args ...string) string {
		t.Helper()
		out, err := c.CRI(args...)
		if err != nil {
			t.Fatalf("crictl %v: %v\n%s", args, err, out)
		}
		return out
	}
	dir := t.TempDir()
	harness.WriteJSON(t, filepath.Join(dir, "pod.json"), c.podConfig("web"))
	harness.WriteJSON(t, filepath.Join(dir, "ctr.json"), c.ctrConfig("app", "sh", "-c", "echo hello from $(hostname); exec sleep 1000"))
	pod := run("runp", filepath.Join(dir, "pod.json"))
	ctr := run("create", pod, filepath.Join(dir, "ctr.json"), filepath.Join(dir, "pod.json"))
	run("start", ctr)
	if out := run("exec", ctr, "sh", "-c", "hostname; cat /sys/class/net/lo/operstate; echo $((6*7))"); out != "web\nunknown\n42" {
		t.Errorf("exec: %q, want the pod's host name, loopback up, 42", out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for run("logs", ctr) != "hello from web" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if out := run("logs", ctr); out != "hello from web" {
		t.Errorf("logs: %q", out)
	}
	raw, err := os.ReadFile(filepath.Join(c.logs, "web", "app.log"))
	if err != nil || !strings.HasSuffix(string(raw), " stdout F hello from web\n") {
		t.Errorf("the log file is not in the CRI format: %q %v", raw, err)
	}
	if out := run("stats", "-o", "json", ctr); !strings.Contains(out, `"workingSetBytes"`) {
		t.Errorf("stats: %s", out)
	}
	if out, _ := c.bd.Docker("ps", "-a", "--format", "{{.Names}}"); strings.TrimSpace(out) != "" {
		t.Errorf("docker ps lists the CRI's containers: %s", out)
	}
	if got := c.engineContainers(t); !strings.Contains(got, "k8s_app_web") || !strings.Contains(got, "k8s_POD_web") {
		t.Errorf("docker ps --filter namespace=k8s.io: %q", got)
	}

	// The log moved away and reopened: new output goes to a new file.
	os.Rename(filepath.Join(c.logs, "web", "app.log"), filepath.Join(c.logs, "web", "app.log.1"))
	if _, err := c.rt.ReopenContainerLog(context.Background(), &runtimeapi.ReopenContainerLogRequest{ContainerId: ctr}); err != nil {
		t.Fatal(err)
	}
	run("exec", ctr, "sh", "-c", "echo after > /proc/1/fd/1")
	var after []byte
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if after, err = os.ReadFile(filepath.Join(c.logs, "web", "app.log")); len(after) > 0 {
			break
		}
	}
	if !strings.HasSuffix(string(after), " stdout F after\n") || strings.Contains(string(after), "hello") {
		t.Errorf("after reopen, the new log file holds %q (%v), want the new line only", after, err)
	}

	c.bd.Stop()
	c.bd.Start(t)
	if out := run("pods", "-q", "--state", "ready"); out != pod {
		t.Errorf("after a restart of berthd, ready pods: %q, want %s", out, pod)
	}
	if out := run("exec", ctr, "hostname"); out != "web" {
		t.Errorf("exec after a restart of berthd: %q", out)
	}
	run("stopp", pod)
	if out := run("ps", "-a", "-q", "--state", "running"); out != "" {
		t.Errorf("running after stopp: %q", out)
	}
	run("rmp", pod)
	if out := run("ps", "-a", "-q"); out != "" {
		t.Errorf("containers after rmp: %q", out)
	}
}
