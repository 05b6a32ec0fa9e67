package dockercli

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
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

	"github.com/berth-project/berth/storage/quota/quotatest"
	"github.com/berth-project/berth/test/berthd"
	"github.com/berth-project/berth/test/registry"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// withBusybox imports Debian's busybox-static as the image "busybox".
func withBusybox(t *testing.T, d *daemon) {
	t.Helper()
	tarball := filepath.Join(t.TempDir(), "busybox.tar")
	if err := os.WriteFile(tarball, registry.BusyboxTar(t), 0o644); err != nil {
		t.Fatal(err)
	}
	d.must(t, "import", tarball, "busybox:latest")
}

// stdout runs the docker CLI and returns its stdout alone, and its exit
// code.
func (d *daemon) stdout(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "DOCKER_CONFIG="+filepath.Join(d.dir, "docker-config"))
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("docker %v: %v", args, err)
	}
	if code != 0 {
		t.Logf("docker %v: exit %d, stderr: %s", args, code, errb.String())
	}
	return out.String(), code
}

// hostState counts what containers leave on the host: mounts under the
// daemon's directory, berth cgroups, berthd's open descriptors and its
// goroutines (from /debug/pprof, served in debug mode).
type hostState struct{ mounts, cgroups, fds, goroutines int }

func (d *daemon) hostState(t *testing.T) hostState {
	t.Helper()
	// Connections and goroutines wind down a moment after a client is
	// done: read until two readings agree.
	var prev hostState
	for i := range 40 {
		s := d.readHostState(t)
		if i > 0 && s == prev {
			return s
		}
		prev = s
		time.Sleep(50 * time.Millisecond)
	}
	return prev
}

func (d *daemon) readHostState(t *testing.T) hostState {
	var s hostState
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], d.dir) {
			s.mounts++
		}
	}
	for _, ctl := range []string{"memory", "pids", "cpu,cpuacct", "freezer", "devices", "blkio", "cpuset"} {
		ents, _ := os.ReadDir(filepath.Join("/sys/fs/cgroup", ctl, d.CgroupParent))
		for _, e := range ents {
			if e.IsDir() {
				s.cgroups++
			}
		}
	}
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.Pid()))
	s.fds = len(fds)
	c := http.Client{Transport: &http.Transport{DialContext: unixDialer(d.sock), DisableKeepAlives: true}}
	resp, err := c.Get("http://berthd/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fscanf(resp.Body, "goroutine profile: total %d", &s.goroutines)
	resp.Body.Close()
	return s
}

func TestRunWithDockerCLI(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	before := d.hostState(t)

	if out, code := d.stdout(t, "", "run", "--rm", "busybox", "echo", "hello", "world"); out != "hello world\n" || code != 0 {
		t.Errorf("run --rm echo: %q exit %d", out, code)
	}
	if _, code := d.stdout(t, "", "run", "--rm", "busybox", "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("exit status: %d, want 7", code)
	}
	if out, _ := d.stdout(t, "line one\nline two\n", "run", "-i", "--rm", "busybox", "cat"); out != "line one\nline two\n" {
		t.Errorf("stdin through -i: %q", out)
	}
	// stderr is a stream of its own.
	if out, _ := d.stdout(t, "", "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2"); out != "out\n" {
		t.Errorf("stdout alone: %q", out)
	}
	// The image's defaults and the user's overrides.
	out, _ := d.stdout(t, "", "run", "--rm", "-e", "FOO=bar", "-w", "/tmp", "-u", "nobody", "--hostname", "box1", "busybox",
		"sh", "-c", "echo $FOO $(pwd) $(id -u) $(hostname) $PATH")
	if want := "bar /tmp 65534 box1 /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"; out != want {
		t.Errorf("env/cwd/user/hostname: %q, want %q", out, want)
	}
	// A bind mount, read-only honoured.
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "f"), []byte("from host"), 0o644)
	if out, _ := d.stdout(t, "", "run", "--rm", "-v", host+":/data:ro", "busybox", "sh", "-c", "cat /data/f; touch /data/g 2>/dev/null || echo read-only"); out != "from hostread-only\n" {
		t.Errorf("ro bind: %q", out)
	}
	// Limits reach the container's cgroup.
	out, _ = d.stdout(t, "", "run", "--rm", "--memory", "64m", "--pids-limit", "50", "busybox", "sh", "-c",
		"cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max")
	if out != "67108864\n50\n" {
		t.Errorf("limits seen inside: %q", out)
	}
	if _, code := d.stdout(t, "", "run", "--rm", "busybox", "nosuchcommand"); code != 127 {
		t.Errorf("missing command: exit %d, want 127", code)
	}
	d.must(t, "container", "prune", "-f")

	after := d.hostState(t)
	if after != before {
		t.Errorf("left behind: before %+v, after %+v", before, after)
	}
}

func TestDetachedLogsExecStopWithDockerCLI(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	before := d.hostState(t)

	id := strings.TrimSpace(d.must(t, "run", "-d", "--name", "ticker", "busybox", "sh", "-c",
		"trap 'echo bye; exit 0' TERM; i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q", id)
	}
	if out := d.must(t, "ps", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(out, "ticker Up") {
		t.Errorf("ps: %q", out)
	}
	if out, _ := d.docker("run", "-d", "--name", "ticker", "busybox", "true"); !strings.Contains(out, `The container name "/ticker" is already in use`) {
		t.Errorf("name clash: %s", out)
	}
	// logs -f follows until the container stops.
	follow := exec.Command("docker", "logs", "-f", "ticker")
	follow.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock)
	var logs bytes.Buffer
	follow.Stdout = &logs
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)

	if out, code := d.stdout(t, "", "exec", "ticker", "sh", "-c", "echo in $(hostname); exit 3"); out != "in "+id[:12]+"\n" || code != 3 {
		t.Errorf("exec: %q exit %d", out, code)
	}
	if out, _ := d.stdout(t, "piped\n", "exec", "-i", "ticker", "cat"); out != "piped\n" {
		t.Errorf("exec -i: %q", out)
	}
	if out := d.must(t, "inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.Name}} {{.Config.Image}}", "ticker"); strings.TrimSpace(out) != "running true /ticker busybox" {
		t.Errorf("inspect: %q", out)
	}
	if out, _ := d.docker("rm", "ticker"); !strings.Contains(out, "container is running: stop the container before removing or force remove") {
		t.Errorf("rm of a running container: %s", out)
	}
	d.must(t, "stop", "ticker")
	done := make(chan error)
	go func() { done <- follow.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		follow.Process.Kill()
		t.Fatal("logs -f did not end when the container stopped")
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) < 5 || lines[0] != "tick 0" || lines[len(lines)-1] != "bye" {
		t.Errorf("logs -f: %q", lines)
	}
	if out := d.must(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "ticker"); strings.TrimSpace(out) != "exited 0" {
		t.Errorf("after stop: %q", out)
	}
	if out, _ := d.docker("exec", "ticker", "true"); !strings.Contains(out, "is not running") {
		t.Errorf("exec in a stopped container: %s", out)
	}
	if out := d.must(t, "logs", "--tail", "1", "ticker"); out != "bye\n" {
		t.Errorf("logs --tail 1: %q", out)
	}
	d.must(t, "start", "ticker")
	d.must(t, "kill", "ticker")
	if out := d.must(t, "wait", "ticker"); strings.TrimSpace(out) != "137" {
		t.Errorf("wait after kill: %q", out)
	}
	// export: the merged filesystem, with what the container wrote.
	d.must(t, "start", "ticker")
	d.must(t, "exec", "ticker", "sh", "-c", "echo exported > /tmp/mark")
	d.must(t, "stop", "-t", "1", "ticker")
	archive := filepath.Join(t.TempDir(), "ticker.tar")
	d.must(t, "export", "-o", archive, "ticker")
	if out, err := exec.Command("tar", "-xOf", archive, "tmp/mark").Output(); err != nil || string(out) != "exported\n" {
		t.Errorf("export lacks the container's file: %v %q", err, out)
	}
	if out, err := exec.Command("tar", "-tvf", archive, "bin/sh").Output(); err != nil || !strings.Contains(string(out), "bin/sh -> /bin/busybox") {
		t.Errorf("export: the symlink bin/sh: %v %q", err, out)
	}
	d.must(t, "rename", "ticker", "tocker")
	d.must(t, "rm", "tocker")
	if out, _ := d.docker("rm", "tocker"); !strings.Contains(out, "No such container: tocker") {
		t.Errorf("rm twice: %s", out)
	}
	if out := d.must(t, "ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("ps -a after rm: %q", out)
	}
	if after := d.hostState(t); after != before {
		t.Errorf("left behind: before %+v, after %+v", before, after)
	}
}

func TestInteractiveTTYWithDockerCLI(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script (util-linux) is not installed")
	}
	// script gives docker a pty; the shell's input is typed with pauses.
	cmd := exec.Command("script", "-qfec", "stty cols 100 rows 30; docker run -it --rm busybox sh", "/dev/null")
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "DOCKER_CONFIG="+filepath.Join(d.dir, "docker-config"))
	in, _ := cmd.StdinPipe()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{"echo hello-$((6*7))", "stty size; tty", "exit 5"} {
		time.Sleep(700 * time.Millisecond)
		io.WriteString(in, line+"\n")
	}
	err := cmd.Wait()
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err == nil {
		code = 0
	}
	for _, want := range []string{"hello-42", "30 100", "/dev/pts/0"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("terminal session lacks %q:\n%s", want, out.String())
		}
	}
	if code != 5 {
		t.Errorf("exit %d, want 5\n%s", code, out.String())
	}
}

// TestLiveRestore kills berthd with SIGKILL while a container runs: after a
// restart the container is still listed and running, and its log has every
// line, none lost while berthd was away.
func TestLiveRestore(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	ctl := t.TempDir()
	d.must(t, "run", "-d", "--name", "counter", "-v", ctl+":/ctl", "busybox", "sh", "-c",
		"i=0; while [ $i -lt 30 ]; do echo n $i; i=$((i+1)); sleep 0.05; done; while [ ! -e /ctl/stop ]; do sleep 0.05; done; exit 3")
	time.Sleep(300 * time.Millisecond)
	monitor := d.monitorPid()
	d.kill9()
	time.Sleep(2 * time.Second) // the container writes on alone
	d.start(t)
	if d.monitorPid() != monitor {
		t.Errorf("the monitor changed across the berthd restart: %d → %d", monitor, d.monitorPid())
	}
	if out := d.must(t, "ps", "--format", "{{.Names}} {{.State}}"); strings.TrimSpace(out) != "counter running" {
		t.Errorf("ps after restart: %q", out)
	}
	var want strings.Builder
	for i := range 30 {
		fmt.Fprintf(&want, "n %d\n", i)
	}
	var out string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if out = d.must(t, "logs", "counter"); out == want.String() {
			break
		}
	}
	if out != want.String() {
		t.Errorf("logs after restart:\n%s", out)
	}
	// A container that ends while berthd is down is seen as exited, with
	// its status.
	d.kill9()
	if err := os.WriteFile(filepath.Join(ctl, "stop"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1 * time.Second)
	d.start(t)
	if out := d.must(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "counter"); strings.TrimSpace(out) != "exited 3" {
		t.Errorf("exit while berthd was down: %q", out)
	}
	d.must(t, "rm", "counter")
}

// TestContainerBadInput: docker's status codes and messages.
func TestContainerBadInput(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	post := func(path, body string) (int, string) {
		c := http.Client{Transport: &http.Transport{DialContext: unixDialer(d.sock), DisableKeepAlives: true}}
		resp, err := c.Post("http://berthd"+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		path, body string
		code       int
		msg        string
	}{
		{"/containers/create", `{"Image":`, 400, "invalid JSON"},
		{"/containers/create", `{"Image": 5}`, 400, "cannot unmarshal number"},
		{"/containers/create", `{"Image": "nosuch:1"}`, 404, "No such image: nosuch:1"},
		{"/containers/create?name=a%20b", `{"Image": "busybox"}`, 400, "Invalid container name"},
		{"/containers/create", `{"Image": "busybox", "HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}`, 400, "invalid restart policy"},
		{"/containers/create", `{"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Binds": ["bad/vol:/x"]}}`, 400, "includes invalid characters for a local volume name"},
		{"/containers/create", `{"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Binds": ["/nosuch/dir:/x"], "Mounts": [{"Type": "bind", "Source": "/nosuch/dir2", "Target": "/y"}]}}`, 400, "bind source path does not exist: /nosuch/dir2"},
		{"/containers/nosuch/start", ``, 404, "No such container: nosuch"},
		{"/containers/nosuch/wait", ``, 404, "No such container: nosuch"},
		{"/v1.12/containers/create", `{"Image": "busybox"}`, 400, "client version 1.12 is too old"},
	} {
		code, body := post(c.path, c.body)
		if code != c.code || !strings.Contains(body, c.msg) {
			t.Errorf("POST %s %s: %d %s, want %d %q", c.path, c.body, code, body, c.code, c.msg)
		}
	}
	if out := d.must(t, "ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("bad requests left containers: %q", out)
	}

	// A client that goes away in the middle of an attach: the container
	// and berthd carry on, nothing leaks.
	before := d.hostState(t)
	d.must(t, "run", "-d", "--name", "chatty", "busybox", "sh", "-c", "while true; do echo x; sleep 0.05; done")
	for range 5 {
		attach := exec.Command("docker", "attach", "chatty")
		attach.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock)
		attach.Stdout = io.Discard
		if err := attach.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		attach.Process.Kill()
		attach.Wait()
	}
	if out := d.must(t, "inspect", "-f", "{{.State.Running}}", "chatty"); strings.TrimSpace(out) != "true" {
		t.Errorf("container after clients left: %q", out)
	}
	d.must(t, "rm", "-f", "chatty")
	time.Sleep(500 * time.Millisecond) // attach handlers notice the closed streams
	if after := d.hostState(t); after != before {
		t.Errorf("left behind: before %+v, after %+v", before, after)
	}
	// A container that exits while an exec runs in it: the exec ends with
	// the container, its status is reported, nothing is left.
	d.must(t, "run", "-d", "--name", "short", "busybox", "sleep", "1")
	if _, code := d.stdout(t, "", "exec", "short", "sleep", "30"); code != 137 {
		t.Errorf("exec in a container that exited: exit %d, want 137", code)
	}
	d.must(t, "wait", "short") // the container's own exit may be reported just after the exec's
	d.must(t, "rm", "short")
	if after := d.hostState(t); after != before {
		t.Errorf("left behind after the exec: before %+v, after %+v", before, after)
	}
	// Starting a running container is 304, as in docker; stopping an
	// exited one too.
	id := strings.TrimSpace(d.must(t, "run", "-d", "busybox", "sleep", "100"))
	if code, _ := post("/containers/"+id+"/start", ""); code != http.StatusNotModified {
		t.Errorf("start of a running container: %d", code)
	}
	d.must(t, "rm", "-f", id)
}

func unixDialer(sock string) func(ctx context.Context, _, _ string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}
}

// TestRuntimeOpsWithDockerCLI: top, stats, pause/unpause, events, --init,
// restart policies and log rotation, as the docker CLI shows them.
func TestRuntimeOpsWithDockerCLI(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	before := d.hostState(t)

	events := exec.Command("docker", "events", "--filter", "type=container", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	events.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock)
	var evOut bytes.Buffer
	events.Stdout = &evOut
	if err := events.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)

	d.must(t, "run", "-d", "--name", "spin", "--memory", "64m", "busybox", "sh", "-c", "while true; do :; done")
	time.Sleep(500 * time.Millisecond)
	if out := d.must(t, "top", "spin"); !strings.Contains(out, "while true") || !strings.Contains(out, "PID") {
		t.Errorf("top:\n%s", out)
	}
	// The CPU share stats reports is checked against what the container's
	// cgroup counted over the same call, not against an idle machine.
	spinID := strings.TrimSpace(d.must(t, "inspect", "-f", "{{.Id}}", "spin"))
	usage := func() int64 {
		b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuacct", d.CgroupParent, spinID, "cpuacct.usage"))
		if err != nil {
			t.Skipf("no cgroup v1 cpuacct to compare with: %v", err)
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return n
	}
	u0, t0 := usage(), time.Now()
	out := d.must(t, "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}} {{.CPUPerc}}", "spin")
	measured := float64(usage()-u0) / float64(time.Since(t0).Nanoseconds()) * 100
	f := strings.Fields(out)
	if len(f) < 6 || f[0] != "spin" || f[3] != "64MiB" || f[4] != "1" {
		t.Errorf("stats: %q", out)
	} else if cpu, _ := strconv.ParseFloat(strings.TrimSuffix(f[5], "%"), 64); cpu <= 0 || cpu < measured*0.5-5 || cpu > measured*1.5+5 {
		t.Errorf("stats says the spinning shell used %v%% CPU; its cgroup counted %.1f%% over the call", cpu, measured)
	}
	d.must(t, "pause", "spin")
	if out := d.must(t, "inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "spin"); strings.TrimSpace(out) != "paused true" {
		t.Errorf("after pause: %q", out)
	}
	if out, _ := d.docker("exec", "spin", "true"); !strings.Contains(out, "is paused") {
		t.Errorf("exec in a paused container: %s", out)
	}
	d.must(t, "unpause", "spin")
	d.must(t, "pause", "spin")
	d.must(t, "rm", "-f", "spin") // a paused container is thawed to be killed

	// --init: berth-init is PID 1 and passes the stop signal on.
	if out, code := d.stdout(t, "", "run", "--rm", "--init", "busybox", "sh", "-c", "cat /proc/1/comm; exit 4"); out != "berth-init\n" || code != 4 {
		t.Errorf("--init: %q exit %d", out, code)
	}
	d.must(t, "run", "-d", "--init", "--name", "sleeper", "busybox", "sleep", "100")
	start := time.Now()
	d.must(t, "stop", "sleeper")
	if time.Since(start) > 5*time.Second {
		t.Errorf("stop of an --init container took %v: the signal did not reach sleep", time.Since(start))
	}
	if out := d.must(t, "inspect", "-f", "{{.State.ExitCode}}", "sleeper"); strings.TrimSpace(out) != "143" {
		t.Errorf("exit after stop with --init: %q", out)
	}

	// on-failure:2 restarts twice, then leaves it exited.
	d.must(t, "run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 3")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := d.must(t, "inspect", "-f", "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}", "flaky")
		if strings.TrimSpace(out) == "exited 2 3" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("on-failure:2 did not settle: %q", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := d.must(t, "logs", "flaky"); out != "run\nrun\nrun\n" {
		t.Errorf("logs of three runs: %q", out)
	}

	// Rotation: max-size 1k, max-file 2 keeps at most ~2 KiB, the last
	// lines readable.
	d.must(t, "run", "--name", "chatty", "--log-opt", "max-size=1k", "--log-opt", "max-file=2", "busybox", "sh", "-c",
		"i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done")
	logPath := strings.TrimSpace(d.must(t, "inspect", "-f", "{{.LogPath}}", "chatty"))
	for _, p := range []string{logPath, logPath + ".1"} {
		if st, err := os.Stat(p); err != nil || st.Size() > 1024 {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat(logPath + ".2"); err == nil {
		t.Errorf("a third log file was kept")
	}
	if out := d.must(t, "logs", "--tail", "1", "chatty"); out != "line 199\n" {
		t.Errorf("last line after rotation: %q", out)
	}
	d.must(t, "rm", "flaky", "sleeper", "chatty")

	time.Sleep(300 * time.Millisecond)
	events.Process.Kill()
	events.Wait()
	time.Sleep(100 * time.Millisecond) // berthd sees the stream end
	got := evOut.String()
	for _, want := range []string{"create spin", "start spin", "pause spin", "unpause spin", "die spin", "destroy spin", "kill sleeper", "stop sleeper", "die flaky"} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("events lack %q:\n%s", want, got)
		}
	}
	if after := d.hostState(t); after != before {
		t.Errorf("left behind: before %+v, after %+v", before, after)
	}
}

// TestVolumesWithDockerCLI: named volumes outlive containers and berthd
// restarts, honour ro, cannot be removed in use; anonymous volumes get the
// image's content copied in and go with `rm -v`; bad input is refused.
func TestVolumesWithDockerCLI(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	before := d.hostState(t)

	d.must(t, "volume", "create", "--label", "team=a", "data")
	if out, _ := d.stdout(t, "", "run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo kept > /data/f"); out != "" {
		t.Errorf("write: %q", out)
	}
	if out, _ := d.stdout(t, "", "run", "--rm", "-v", "data:/data:ro", "busybox", "sh", "-c", "cat /data/f; touch /data/g 2>/dev/null || echo ro"); out != "kept\nro\n" {
		t.Errorf("read-only volume: %q", out)
	}
	// --mount type=volume, and a volume created on first use.
	if out, _ := d.stdout(t, "", "run", "--rm", "--mount", "type=volume,source=auto,target=/x", "busybox", "sh", "-c", "echo m > /x/m; cat /x/m"); out != "m\n" {
		t.Errorf("--mount type=volume: %q", out)
	}
	if out := d.must(t, "volume", "ls", "-q", "--filter", "label=team=a"); strings.TrimSpace(out) != "data" {
		t.Errorf("volume ls by label: %q", out)
	}
	d.must(t, "run", "-d", "--name", "holder", "-v", "data:/data", "busybox", "sleep", "100")
	if out, _ := d.docker("volume", "rm", "data"); !strings.Contains(out, "volume is in use") {
		t.Errorf("rm of a volume in use: %s", out)
	}
	d.must(t, "rm", "-f", "holder")
	d.stop()
	d.start(t)
	if out, _ := d.stdout(t, "", "run", "--rm", "-v", "data:/data", "busybox", "cat", "/data/f"); out != "kept\n" {
		t.Errorf("after a berthd restart: %q", out)
	}

	// --volumes-from: the volume and the host bind, here read-only.
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "h"), []byte("host file"), 0o644)
	d.must(t, "create", "--name", "src", "-v", "data:/data", "-v", host+":/h", "busybox", "true")
	if out, _ := d.stdout(t, "", "run", "--rm", "--volumes-from", "src:ro", "busybox", "sh", "-c",
		"cat /data/f /h/h; echo; touch /data/x 2>/dev/null || echo ro"); out != "kept\nhost file\nro\n" {
		t.Errorf("--volumes-from: %q", out)
	}
	d.must(t, "rm", "src")
	if out := d.must(t, "system", "df"); !strings.Contains(out, "Local Volumes") || !strings.Contains(out, "Images") {
		t.Errorf("system df:\n%s", out)
	}
	// system prune: stopped containers and unused anonymous volumes go;
	// the named volume and the image in use stay.
	d.must(t, "create", "--name", "stopped", "-v", "/anon", "busybox", "true")
	if out := d.must(t, "system", "prune", "-f", "--volumes"); !strings.Contains(out, "Deleted Containers:") || !strings.Contains(out, "Total reclaimed space") {
		t.Errorf("system prune:\n%s", out)
	}
	if out := d.must(t, "ps", "-aq"); out != "" {
		t.Errorf("containers after system prune: %q", out)
	}
	if out := d.must(t, "volume", "ls", "-q"); strings.Fields(out)[0] != "auto" || !strings.Contains(out, "data") || len(strings.Fields(out)) != 2 {
		t.Errorf("volumes after system prune: %q", out)
	}

	// A symlink in the image pointing out of it cannot send a volume's
	// mount (or its copy-up) outside: the destination is resolved in the
	// root filesystem.
	outside := filepath.Join(t.TempDir(), "outside")
	evil := append(registry.BusyboxEntries(t), registry.Entry{Name: "escape", Type: tar.TypeSymlink, Linkname: "../../../../../../../.." + outside})
	evilTar := filepath.Join(t.TempDir(), "evil.tar")
	os.WriteFile(evilTar, registry.Tar(t, evil...), 0o644)
	d.must(t, "import", evilTar, "evil:1")
	if out, _ := d.stdout(t, "", "run", "--rm", "-v", "data:/escape/x", "evil:1", "cat", "/escape/x/f"); out != "kept\n" {
		t.Errorf("volume under a symlinked path: %q", out)
	}
	if _, err := os.Stat(outside); err == nil {
		t.Errorf("a volume mount followed the image's symlink out to %s", outside)
	}

	// Anonymous volume over an image path: the image's files copied in.
	d.must(t, "create", "--name", "anon", "-v", "/etc", "busybox", "cat", "/etc/passwd")
	if out := d.must(t, "start", "-a", "anon"); !strings.HasPrefix(out, "root:x:0:0") {
		t.Errorf("copy-up into an anonymous volume: %q", out)
	}
	name := strings.TrimSpace(d.must(t, "inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", "anon"))
	if len(name) != 64 {
		t.Fatalf("anonymous volume name %q", name)
	}
	d.must(t, "rm", "-v", "anon")
	// A --rm container that cannot start goes with its anonymous volume.
	if _, code := d.stdout(t, "", "run", "--rm", "-v", "/scratch", "busybox", "nosuchcommand"); code != 127 {
		t.Errorf("a missing command: exit %d", code)
	}
	if out := d.must(t, "volume", "ls", "-q"); len(strings.Fields(out)) != 2 {
		t.Errorf("volumes after a --rm container failed to start: %q", out)
	}
	if out, _ := d.docker("volume", "inspect", name); !strings.Contains(out, "no such volume") {
		t.Errorf("the anonymous volume outlived rm -v: %s", out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"volume", "create", "--opt", "size=1g", "--opt", "type=tmpfs", "qq"}, "applies to a plain volume"},
		{[]string{"volume", "create", "--driver", "nfsish", "q"}, `plugin "nfsish" not found`},
		{[]string{"volume", "create", "bad/name"}, "includes invalid characters"},
		{[]string{"volume", "rm", "nosuch"}, "no such volume"},
		{[]string{"run", "--rm", "-v", "data:/a", "-v", "auto:/a", "busybox", "true"}, "Duplicate mount point"},
	} {
		if out, err := d.docker(c.args...); err == nil || !strings.Contains(out, c.want) {
			t.Errorf("docker %v: %v %s (want %q)", c.args, err, out, c.want)
		}
	}
	if out := d.must(t, "volume", "ls", "-q"); strings.Fields(out)[0] != "auto" || len(strings.Fields(out)) != 2 {
		t.Errorf("volumes left: %q", out)
	}
	d.must(t, "volume", "prune", "-a", "-f")
	if out := d.must(t, "volume", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("after prune -a: %q", out)
	}
	if after := d.hostState(t); after.mounts != before.mounts || after.cgroups != before.cgroups {
		t.Errorf("left behind: before %+v, after %+v", before, after)
	}
}

// TestDiskQuotas: --storage-opt size= limits a container's writable layer
// and a volume's size= limits the volume; writing until failure stops
// within 1% of the limit with "No space left on device" (this host's data
// root has the loop-image backend), and nothing of the quota images is
// left after removal.
func TestDiskQuotas(t *testing.T) {
	d := startDaemon(t)
	checkDiskQuotas(t, d, "loop-mounted ext4 image", "No space left on device")
}

// TestDiskQuotasOnBtrfs: the same with berthd's data root on a btrfs the
// test mounts, where berthd picks subvolumes with qgroup limits.
func TestDiskQuotasOnBtrfs(t *testing.T) {
	root, ok := quotatest.Btrfs(t)
	if !ok {
		t.Skip("no btrfs here")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("the docker CLI is not installed")
	}
	bd := berthd.StartOn(t, filepath.Join(root, "data"))
	d := &daemon{Daemon: bd, sock: bd.Sock, dir: bd.Dir}
	checkDiskQuotas(t, d, "btrfs subvolume", "Disk quota exceeded")
}

// checkDiskQuotas runs the quota checks on d, whose data root's backend
// info names as backend and whose writes past a limit fail with fullErr.
func checkDiskQuotas(t *testing.T, d *daemon, backend, fullErr string) {
	withBusybox(t, d)
	before := d.hostState(t)
	if out := d.must(t, "info"); !strings.Contains(out, "Quota backend: "+backend) || !strings.Contains(out, "Volume quota backend: "+backend) {
		t.Errorf("info does not name the %s backend:\n%s", backend, out)
	}
	written := func(out string) int64 {
		// dd prints "N bytes (…) copied"; busybox dd: "N+0 records out".
		var n int64
		for _, l := range strings.Split(out, "\n") {
			var recs int64
			if _, err := fmt.Sscanf(l, "%d+0 records out", &recs); err == nil {
				n = recs * 64 * 1024
			}
		}
		return n
	}
	const limit = 32 << 20
	out, _ := d.stdout(t, "", "run", "--name", "quota", "--storage-opt", "size=32m", "busybox", "sh", "-c",
		"dd if=/dev/zero of=/big bs=64k count=2000 2>&1")
	n := written(out)
	if n < limit*99/100 || n > limit*101/100 || !strings.Contains(out, fullErr) {
		t.Errorf("rootfs quota: wrote %d bytes of a %d limit:\n%s", n, limit, out)
	}
	t.Logf("rootfs under a %d-byte limit: %d bytes (%+.2f%%)", limit, n, 100*float64(n-limit)/limit)
	// Usage counts a partly written last block too, which dd's record
	// count leaves out.
	near := func(out string, n int64) bool {
		u, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
		return err == nil && u >= n && u < n+64<<10
	}
	if out := d.must(t, "inspect", "-s", "-f", "{{.SizeRw}}", "quota"); !near(out, n) {
		t.Errorf("SizeRw %q, want the %d bytes written", out, n)
	}
	d.must(t, "rm", "quota")

	d.must(t, "volume", "create", "--opt", "size=16m", "small")
	out, _ = d.stdout(t, "", "run", "--rm", "-v", "small:/v", "busybox", "sh", "-c", "dd if=/dev/zero of=/v/big bs=64k count=2000 2>&1; ls -a /v")
	n = written(out)
	if n < (16<<20)*99/100 || n > (16<<20)*101/100 || !strings.Contains(out, fullErr) {
		t.Errorf("volume quota: wrote %d bytes of a %d limit:\n%s", n, 16<<20, out)
	}
	t.Logf("volume under a %d-byte limit: %d bytes (%+.2f%%)", 16<<20, n, 100*float64(n-16<<20)/(16<<20))
	if strings.Contains(out, "lost+found") {
		t.Errorf("the volume shows its filesystem's lost+found:\n%s", out)
	}
	if out := d.must(t, "volume", "inspect", "-f", "{{.UsageData.Size}}", "small"); !near(out, n) {
		t.Errorf("volume usage %q, want the %d bytes written", out, n)
	}
	d.must(t, "volume", "rm", "small")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--rm", "--storage-opt", "size=lots", "busybox", "true"}, `invalid storage option size="lots"`},
		{[]string{"run", "--rm", "--storage-opt", "size=1k", "busybox", "true"}, "below the smallest quota"},
		{[]string{"run", "--rm", "--storage-opt", "iops=5", "busybox", "true"}, `unknown storage option "iops"`},
		{[]string{"volume", "create", "--opt", "size=-1", "neg"}, "invalid volume option size"},
		{[]string{"run", "--rm", "--storage-opt", "size=10T", "busybox", "true"}, "larger than the filesystem"},
		{[]string{"volume", "create", "--opt", "size=10T", "huge"}, "larger than the filesystem"},
	} {
		if out, err := d.docker(c.args...); err == nil || !strings.Contains(out, c.want) {
			t.Errorf("docker %v: %v %s (want %q)", c.args, err, out, c.want)
		}
	}
	if out := d.must(t, "ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("refused runs left containers: %q", out)
	}
	if out := d.must(t, "volume", "ls", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("refused volumes left: %q", out)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), d.dir) {
		t.Errorf("quota images still mounted under %s", d.dir)
	}
	if after := d.hostState(t); after.mounts != before.mounts || after.cgroups != before.cgroups {
		t.Errorf("left behind: before %+v, after %+v", before, after)
	}
}

// TestBadContainerRecords: a record cut short and a record of "{}" in
// containers.db (written while berthd is stopped) are skipped and named
// in berthd's log and by berthd verify; the good containers are served
// and nothing crashes.
func TestBadContainerRecords(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	d.must(t, "create", "--name", "good", "busybox", "true")
	d.stop()
	db, err := bolt.Open(filepath.Join(d.dir, "data", "containers.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("containers"))
		if b == nil {
			return fmt.Errorf("no containers bucket")
		}
		if err := b.Put([]byte("cut-short"), []byte(`{"ID":"cut-short","Name":"/x","Con`)); err != nil {
			return err
		}
		return b.Put([]byte("empty-record"), []byte(`{}`))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(d.Binary(), "verify", "--data-root", filepath.Join(d.dir, "data")).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "cut-short") || !strings.Contains(string(out), "empty-record") {
		t.Errorf("berthd verify: want both bad records named: %v\n%s", err, out)
	}
	d.start(t)
	if out := d.must(t, "ps", "-a", "--format", "{{.Names}}"); strings.TrimSpace(out) != "good" {
		t.Errorf("ps -a after bad records: %q", out)
	}
	for _, ref := range []string{"cut-short", "empty-record"} {
		if out, err := d.docker("inspect", ref); err == nil {
			t.Errorf("a bad record was served: %s", out)
		}
	}
	if out := d.must(t, "start", "-a", "good"); out != "" {
		t.Errorf("start of the good container: %q", out)
	}
	logb, _ := os.ReadFile(filepath.Join(d.dir, "berthd.log"))
	if !strings.Contains(string(logb), "skipping a bad container record") {
		t.Error("berthd's log does not name the bad records")
	}
}

// TestOOMKilled: a container the OOM killer ends is reported as dockerd
// reports it: State.OOMKilled, an oom event before die, exit 137; a
// later run that fits its limit clears it.
func TestOOMKilled(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	since := strconv.FormatInt(time.Now().Unix(), 10)
	_, code := d.stdout(t, "", "run", "--name", "hog", "-m", "16m", "--memory-swap", "16m", "busybox", "sh", "-c", "a=$(head -c 200m /dev/zero | tr '\\0' x); echo ${#a}")
	if code != 137 {
		t.Errorf("exit %d, want 137", code)
	}
	if out := strings.TrimSpace(d.must(t, "inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", "hog")); out != "true 137" {
		t.Errorf("inspect: %q, want \"true 137\"", out)
	}
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	evs := d.must(t, "events", "--since", since, "--until", "0s", "--filter", "container=hog", "--format", "{{.Action}}")
	if i, j := strings.Index(evs, "oom"), strings.Index(evs, "die"); i < 0 || j < i {
		t.Errorf("events: want oom then die:\n%s", evs)
	}
	d.must(t, "rm", "hog")
	d.must(t, "run", "--name", "fits", "-m", "16m", "busybox", "true")
	if out := strings.TrimSpace(d.must(t, "inspect", "-f", "{{.State.OOMKilled}}", "fits")); out != "false" {
		t.Errorf("a container within its limit: OOMKilled %s", out)
	}
}

// TestMonitorReleasesFds: after containers are removed (rm -f of running
// ones, concurrently), berth-monitor holds no more descriptors than
// before they ran: their pipes are closed when they end, not at some
// later garbage collection.
func TestMonitorReleasesFds(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	d.must(t, "run", "--rm", "busybox", "true") // the monitor is up
	fds := func() int {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.monitorPid()))
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := fds()
	var names []string
	for i := 0; i < 12; i++ {
		name := fmt.Sprintf("fd%d", i)
		d.must(t, "run", "-d", "--name", name, "busybox", "sh", "-c", "while :; do echo tick; sleep 0.1; done")
		names = append(names, name)
	}
	var wg sync.WaitGroup
	for _, n := range names {
		wg.Add(1)
		go func() { defer wg.Done(); d.docker("rm", "-f", n) }()
	}
	wg.Wait()
	after := fds()
	for i := 0; i < 50 && after > before; i++ {
		time.Sleep(100 * time.Millisecond)
		after = fds()
	}
	if after > before {
		t.Errorf("berth-monitor holds %d descriptors after 12 containers came and went, %d before", after, before)
	}
}

// TestLogsOnFullDisk: when the data root fills up, a container's output
// is dropped — the container is never held up — and said so: a warning
// in berthd's log, a log-dropped event, and once space returns a marker
// line in the container's log, a log-resumed event and logging again.
func TestLogsOnFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	root := t.TempDir()
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "size=48m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })
	bd := berthd.StartOn(t, filepath.Join(root, "data"))
	d := &daemon{Daemon: bd, sock: bd.Sock, dir: bd.Dir}
	withBusybox(t, d)
	// Leave ~1 MiB free.
	var st unix.Statfs_t
	unix.Statfs(root, &st)
	filler := filepath.Join(root, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, int64(st.Bavail)*st.Bsize-1<<20))
	f.Close()
	since := strconv.FormatInt(time.Now().Unix(), 10)
	d.must(t, "run", "-d", "--name", "chatty", "busybox", "sh", "-c",
		"i=0; while [ $i -lt 60000 ]; do echo line $i; i=$((i+1)); done; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo after-resume")
	events := func() string {
		out, _ := d.docker("events", "--since", since, "--until", strconv.FormatInt(time.Now().Unix()+1, 10), "--filter", "container=chatty", "--format", "{{.Action}}")
		return out
	}
	for i := 0; i < 100 && !strings.Contains(events(), "log-dropped"); i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if ev := events(); !strings.Contains(ev, "log-dropped") {
		t.Fatalf("no log-dropped event:\n%s", ev)
	}
	os.Remove(filler)
	d.must(t, "exec", "chatty", "touch", "/tmp/go")
	if out := strings.TrimSpace(d.must(t, "wait", "chatty")); out != "0" {
		t.Errorf("the container exited %s: it must never be held up by its log", out)
	}
	logs := d.must(t, "logs", "chatty")
	if !strings.Contains(logs, "line(s) of output were not logged: no space left on device") || !strings.HasSuffix(logs, "after-resume\n") {
		t.Errorf("logs: want the marker and the line after it, got the tail %q", logs[max(0, len(logs)-300):])
	}
	if ev := events(); !strings.Contains(ev, "log-resumed") {
		t.Errorf("no log-resumed event:\n%s", ev)
	}
	if b, _ := os.ReadFile(filepath.Join(d.dir, "berthd.log")); !strings.Contains(string(b), "container output is not being logged") {
		t.Error("berthd's log does not warn of the lost output")
	}
}

// TestMonitorKilled: berth-monitor killed with SIGKILL, twenty times, under
// running containers. The new monitor takes them over: they run on with
// the same processes, their output reaches the log in order (at most what
// a dying monitor had read and not written is lost), stop and rm work,
// and the exit is recorded. A container with a terminal, whose pty went
// with the monitor, is stopped instead and says why; nothing of it
// lingers.
func TestMonitorKilled(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	d.must(t, "run", "-d", "--name", "counter", "busybox", "sh", "-c", "i=0; while :; do echo $i; i=$((i+1)); sleep 0.02; done")
	d.must(t, "run", "-d", "--name", "plain", "busybox", "sleep", "600")
	d.must(t, "run", "-d", "-t", "--name", "tty", "busybox", "sleep", "600")
	pid := func(name string) int {
		n, _ := strconv.Atoi(strings.TrimSpace(d.must(t, "inspect", "-f", "{{.State.Pid}}", name)))
		return n
	}
	status := func(name string) string {
		return strings.TrimSpace(d.must(t, "inspect", "-f", "{{.State.Status}}", name))
	}
	counterPid, plainPid, ttyPid := pid("counter"), pid("plain"), pid("tty")
	const kills = 20
	for k := 0; k < kills; k++ {
		mon := d.monitorPid()
		if err := syscall.Kill(mon, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 100 && (d.monitorPid() == mon || d.monitorPid() == 0); i++ {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if st := status("tty"); st != "exited" {
		t.Errorf("the container with a terminal is %q after its monitor was lost", st)
	} else if out := d.must(t, "inspect", "-f", "{{.State.Error}}", "tty"); !strings.Contains(out, "berth-monitor was lost") {
		t.Errorf("the terminal container's exit does not say why: %q", out)
	}
	if syscall.Kill(ttyPid, 0) == nil {
		t.Errorf("the terminal container's process %d outlived its monitor", ttyPid)
	}
	for name, p := range map[string]int{"counter": counterPid, "plain": plainPid} {
		if st, now := status(name), pid(name); st != "running" || now != p {
			t.Errorf("%s after %d monitors were lost: %s, pid %d (was %d)", name, kills, st, now, p)
		}
	}
	d.must(t, "stop", "-t", "1", "counter")
	if code := strings.TrimSpace(d.must(t, "inspect", "-f", "{{.State.ExitCode}}", "counter")); code != "137" {
		t.Errorf("counter's exit code %s, want 137 (killed at the end of stop)", code)
	}
	if syscall.Kill(counterPid, 0) == nil {
		t.Error("the adopted container's process was not reaped")
	}
	logs := strings.Fields(d.must(t, "logs", "counter"))
	gaps, last := 0, -1
	for _, f := range logs {
		n, err := strconv.Atoi(f)
		if err != nil || n <= last {
			t.Fatalf("log out of order or broken at %q after %d", f, last)
		}
		if n != last+1 {
			gaps++
		}
		last = n
	}
	if len(logs) < 50 || gaps > kills {
		t.Errorf("log of %d lines with %d gaps for %d lost monitors", len(logs), gaps, kills)
	}
	t.Logf("%d lines logged across %d lost monitors, %d gaps", len(logs), kills, gaps)
	d.must(t, "rm", "-f", "plain", "tty", "counter")
	if syscall.Kill(plainPid, 0) == nil {
		t.Error("rm -f of an adopted container left its process")
	}
}

// TestInspectRacingCreate: inspect, start and rm of a name while a create
// of that name is in progress answer "No such container" or act on the
// finished container — never a broken connection — and the daemon goes on
// serving (a nil container once wedged every later request).
func TestInspectRacingCreate(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	for round := 0; round < 15; round++ {
		name := fmt.Sprintf("race%d", round)
		var wg sync.WaitGroup
		wg.Add(4)
		go func() { defer wg.Done(); d.docker("create", "--name", name, "busybox", "true") }()
		for _, op := range [][]string{{"inspect", name}, {"start", name}, {"rm", "-f", name}} {
			go func() {
				defer wg.Done()
				out, _ := d.docker(op...)
				if strings.Contains(out, "EOF") || strings.Contains(out, "connection reset") || strings.Contains(out, "500 Internal") {
					t.Errorf("docker %v during a create: %s", op, out)
				}
			}()
		}
		wg.Wait()
		d.docker("rm", "-f", name)
	}
	done := make(chan string, 1)
	go func() { out, _ := d.docker("run", "--rm", "busybox", "echo", "alive"); done <- out }()
	select {
	case out := <-done:
		if strings.TrimSpace(out) != "alive" {
			t.Errorf("run after the races: %q", out)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon hangs after the races")
	}
}
