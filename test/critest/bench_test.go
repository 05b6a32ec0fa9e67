package critest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/registry"
)

// TestCRIBench is bench/cri.sh's measurement, not a test: it runs only
// with BERTH_BENCH_CRI set (to the rounds), and prints, for Debian's
// containerd with each runtime handler, the median time of crictl runp +
// create + start of a pod with one container, and the host memory an
// idle pod costs (the proportional set size of the processes the pods
// add: shims and the pods' processes, and containerd's own growth).
func TestCRIBench(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("BERTH_BENCH_CRI"))
	if rounds <= 0 {
		t.Skip("a benchmark: bench/cri.sh runs it")
	}
	const idle = 10
	ctd := harness.StartContainerd(t, harness.ContainerdOptions{})
	img := registry.Image(t, "amd64", []string{"sh"}, registry.Layer(t, registry.BusyboxTar(t), "gzip"))
	pause := registry.Image(t, "amd64", []string{"sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait; done"},
		registry.Layer(t, registry.BusyboxTar(t), "gzip"))
	ctd.Import(t, "berth.test/pause:1", pause)
	ctd.Import(t, "berth.test/busybox:1", img)
	ctrPath := filepath.Join(ctd.Dir, "ctr.json")
	harness.WriteJSON(t, ctrPath, map[string]any{
		"metadata": map[string]any{"name": "c"}, "image": map[string]any{"image": "berth.test/busybox:1"},
		"command": []string{"sleep", "100000"},
	})
	// berthd serving the CRI itself: no shim, no pause image.
	node := startCRINode(t)
	bdCtrPath := filepath.Join(ctd.Dir, "bd-ctr.json")
	harness.WriteJSON(t, bdCtrPath, map[string]any{
		"metadata": map[string]any{"name": "c"}, "image": map[string]any{"image": node.image},
		"command": []string{"sleep", "100000"},
	})
	n := 0
	// podUp starts a pod and its container and returns the pod's id and
	// the time crictl took.
	podUp := func(handler string) (string, time.Duration) {
		n++
		podPath := filepath.Join(ctd.Dir, fmt.Sprintf("pod-%d.json", n))
		harness.WriteJSON(t, podPath, map[string]any{
			"metadata": map[string]any{"name": fmt.Sprintf("p%d", n), "namespace": "bench", "uid": fmt.Sprintf("u%d", n)},
			"linux":    map[string]any{"cgroup_parent": ctd.CgroupParent},
		})
		start := time.Now()
		if handler == "berthd" {
			pod, _ := harness.RunPod(t, handler, node.CRI, podPath, bdCtrPath)
			return pod, time.Since(start)
		}
		pod, _ := ctd.RunPod(t, handler, podPath, ctrPath)
		return pod, time.Since(start)
	}
	podDown := func(handler, pod string) {
		cri := ctd.CRI
		if handler == "berthd" {
			cri = node.CRI
		}
		cri("stopp", pod)
		if _, err := cri("rmp", pod); err != nil {
			t.Errorf("rmp %s: %v", pod, err)
		}
	}
	handlers := []string{"runc", "berth", "berthd"}
	for _, h := range handlers { // warm
		p, _ := podUp(h)
		podDown(h, p)
	}
	times := map[string][]time.Duration{}
	for range rounds {
		for _, h := range handlers {
			p, d := podUp(h)
			times[h] = append(times[h], d)
			podDown(h, p)
		}
	}
	mem := map[string]float64{}
	for _, h := range handlers {
		// The node's memory: containerd, its shims and what they run; or
		// berthd, its monitor and what it runs.
		used := func() int { return pssKiB(t, ctd) }
		if h == "berthd" {
			used = func() int {
				return pss(node.bd.Pid()) + pss(node.bd.MonitorPid()) + descendantsPss(node.bd.MonitorPid())
			}
		}
		before := used()
		var pods []string
		for range idle {
			p, _ := podUp(h)
			pods = append(pods, p)
		}
		time.Sleep(2 * time.Second)
		mem[h] = float64(used()-before) / idle / 1024
		for _, p := range pods {
			podDown(h, p)
		}
	}
	med := func(ds []time.Duration) float64 {
		s := slices.Clone(ds)
		slices.Sort(s)
		return float64(s[len(s)/2].Microseconds()) / 1000
	}
	fmt.Printf("host: %d CPUs; containerd %s, %d rounds interleaved, %d idle pods per handler\n", runtime.NumCPU(), containerdVersion(), rounds, idle)
	fmt.Printf("%-8s %28s %24s\n", "handler", "runp+create+start (median)", "memory per idle pod")
	for _, h := range handlers {
		fmt.Printf("%-8s %25.1f ms %21.2f MiB\n", h, med(times[h]), mem[h])
	}
	fmt.Printf("berth/runc: time %.2fx, memory %.2fx\n", med(times["berth"])/med(times["runc"]), mem["berth"]/mem["runc"])
	fmt.Printf("berthd/containerd+runc: time %.2fx, memory %.2fx\n", med(times["berthd"])/med(times["runc"]), mem["berthd"]/mem["runc"])
}

// pssKiB adds up the proportional set size of containerd and every
// process under its shims (the shims, the pods' processes).
func pssKiB(t *testing.T, ctd *harness.Containerd) int {
	t.Helper()
	total := pss(ctd.Pid)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == ctd.Pid {
			continue
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(b), ctd.Sock) {
			total += pss(pid) + descendantsPss(pid)
		}
	}
	return total
}

func descendantsPss(pid int) int {
	total := 0
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, f := range strings.Fields(string(b)) {
		c, _ := strconv.Atoi(f)
		total += pss(c) + descendantsPss(c)
	}
	return total
}

func pss(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "Pss:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func containerdVersion() string {
	out, _ := exec.Command("containerd", "--version").Output()
	if f := strings.Fields(string(out)); len(f) >= 3 {
		return f[2]
	}
	return "?"
}
