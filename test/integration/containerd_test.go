package integration

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/registry"
)

// Debian's containerd with berth-runtime as a runtime handler beside runc
// (the README's snippet): the same pod and container through crictl under
// both handlers, with the same outcome — the container's output, exec,
// the exit code a stop gives, and nothing left behind.
func TestContainerdHandlerAsRunc(t *testing.T) {
	ctd := harness.StartContainerd(t, harness.ContainerdOptions{})
	dir, cri, cgroupParent, subnet := ctd.Dir, ctd.CRI, ctd.CgroupParent, ctd.Subnet
	// The images, imported as a node's administrator would: a pause image
	// (a long sleep) and busybox.
	for ref, cmd := range map[string][]string{"berth.test/pause:1": {"/bin/sleep", "1000000"}, "berth.test/busybox:1": {"sh"}} {
		ctd.Import(t, ref, registry.Image(t, "amd64", cmd, registry.Layer(t, registry.BusyboxTar(t), "gzip")))
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
		harness.WriteJSON(t, podPath, pod)
		harness.WriteJSON(t, ctrPath, ctr)
		podID, id := ctd.RunPod(t, handler, podPath, ctrPath)
		defer func() {
			cri("stopp", podID)
			if out, err := cri("rmp", podID); err != nil {
				t.Errorf("%s: rmp: %v: %s", handler, err, out)
			}
		}()
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
			out, err := ctd.InNetns("busybox", "wget", "-q", "-O-", "http://"+net.JoinHostPort(ip, "8080")+"/group").Output()
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
	for _, c := range harness.CgroupDirs(cgroupParent) {
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
