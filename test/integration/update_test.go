package integration

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/test/harness"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// counterBundle runs a shell that bumps a counter in /tmp/count every 10 ms.
func counterBundle(t *testing.T) *harness.Bundle {
	b := harness.NewBundle(t)
	b.Spec.Root.Readonly = false
	b.Spec.Process.Args = []string{"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.01; done"}
	b.Write()
	b.MustRuntime("run", "-d", b.ID)
	return b
}

func readCount(b *harness.Bundle) string {
	data, _ := os.ReadFile(filepath.Join(b.Rootfs, "tmp/count"))
	return strings.TrimSpace(string(data))
}

func TestPauseResume(t *testing.T) {
	b := counterBundle(t)
	time.Sleep(100 * time.Millisecond)
	b.MustRuntime("pause", b.ID)
	if st := b.State(); st.Status != "paused" {
		t.Fatalf("after pause: %+v", st)
	}
	before := readCount(b)
	time.Sleep(300 * time.Millisecond)
	if after := readCount(b); after != before {
		t.Errorf("counter moved while paused: %s → %s", before, after)
	}
	if r := b.Runtime("pause", b.ID); r.Code == 0 {
		t.Errorf("pausing a paused container succeeded")
	}
	b.MustRuntime("resume", b.ID)
	if st := b.State(); st.Status != specs.StateRunning {
		t.Fatalf("after resume: %+v", st)
	}
	time.Sleep(300 * time.Millisecond)
	if after := readCount(b); after == before {
		t.Errorf("counter did not move after resume: %s", after)
	}
	if r := b.Runtime("resume", b.ID); r.Code == 0 {
		t.Errorf("resuming a running container succeeded")
	}
	// A paused container can be force-deleted.
	b.MustRuntime("pause", b.ID)
	b.MustRuntime("delete", "--force", b.ID)
	b.AssertNothingLeft()
}

func TestUpdate(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr(int64(64 << 20))}
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Write()
	b.MustRuntime("run", "-d", b.ID)
	b.MustRuntime("update", "--memory", "32m", "--pids-limit", "12", "--cpu-quota", "20000", "--cpu-period", "100000", "--cpu-share", "256", b.ID)
	checkCgroup(t, b, []cgFile{
		{"memory", "memory.limit_in_bytes", "33554432", "memory.max", "33554432"},
		{"pids", "pids.max", "12", "pids.max", "12"},
		{"cpu", "cpu.cfs_quota_us", "20000", "cpu.max", "20000 100000"},
		{"cpu", "cpu.shares", "256", "cpu.weight", strconv.FormatUint(cgroups.ConvertSharesToWeight(256), 10)},
	})
	res := filepath.Join(b.Dir, "resources.json")
	os.WriteFile(res, []byte(`{"pids": {"limit": 7}, "memory": {"reservation": 16777216}}`), 0o644)
	b.MustRuntime("update", "-r", res, b.ID)
	checkCgroup(t, b, []cgFile{
		{"pids", "pids.max", "7", "pids.max", "7"},
		// Not named by the update: unchanged.
		{"memory", "memory.limit_in_bytes", "33554432", "memory.max", "33554432"},
	})
	if r := b.Runtime("update", "--memory", "-5", b.ID); r.Code == 0 || !strings.Contains(r.Stderr, "linux.resources.memory.limit") {
		t.Errorf("negative memory: %s", r)
	}
	if r := b.Runtime("update", "--memory", "lots", b.ID); r.Code == 0 || !strings.Contains(r.Stderr, "--memory") {
		t.Errorf("bad size: %s", r)
	}
	b.MustRuntime("delete", "--force", b.ID)
	b.AssertNothingLeft()
}

type statsEvent struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data struct {
		CPU struct {
			Usage struct {
				Total uint64 `json:"total"`
			} `json:"usage"`
		} `json:"cpu"`
		Memory struct {
			Usage struct {
				Usage, Limit uint64
			} `json:"usage"`
		} `json:"memory"`
		Pids struct {
			Current uint64 `json:"current"`
		} `json:"pids"`
	} `json:"data"`
}

func TestEventsStats(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr(int64(64 << 20))}
	// Ready once both children exist: before that the count is the
	// shell's progress, not the runtime's.
	b.Spec.Process.Args = []string{"sh", "-c", "sleep 60 & sleep 60 & echo > /ready; wait"}
	b.Write()
	b.MustRuntime("run", "-d", b.ID)
	for i := 0; i < 500; i++ {
		if _, err := os.Stat(filepath.Join(b.Rootfs, "ready")); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	var ev statsEvent
	r := b.MustRuntime("events", "--stats", b.ID)
	if err := json.Unmarshal([]byte(r.Stdout), &ev); err != nil {
		t.Fatal(err, r)
	}
	if ev.Type != "stats" || ev.ID != b.ID || ev.Data.Pids.Current != 3 || ev.Data.Memory.Usage.Usage == 0 ||
		ev.Data.Memory.Usage.Limit != 64<<20 || ev.Data.CPU.Usage.Total == 0 {
		t.Errorf("stats event %+v from %s", ev, r.Stdout)
	}
	b.MustRuntime("delete", "--force", b.ID)
}

func TestEventsStreamReportsOOM(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr(int64(16 << 20)), Swap: ptr(int64(16 << 20))}
	b.Spec.Process.Args = []string{"sh", "-c", "sleep 0.5; dd if=/dev/zero of=/dev/null bs=60M count=1; sleep 60"}
	b.Write()
	b.MustRuntime("run", "-d", b.ID)
	cmd := exec.Command(harness.RuntimeBin(), "--root", b.Root, "events", "--interval", "200ms", b.ID)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	types := map[string]int{}
	done := make(chan struct{})
	go func() {
		s := bufio.NewScanner(out)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		for s.Scan() {
			var ev statsEvent
			if json.Unmarshal(s.Bytes(), &ev) == nil && ev.ID == b.ID {
				types[ev.Type]++
				if ev.Type == "oom" {
					break
				}
			}
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("no oom event within 20 s")
	}
	if types["oom"] != 1 || types["stats"] < 1 {
		t.Errorf("events seen %v, want stats and one oom", types)
	}
	b.MustRuntime("delete", "--force", b.ID)
	b.AssertNothingLeft()
}
