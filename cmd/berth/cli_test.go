package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/test/berthd"
	"github.com/berth-project/berth/test/registry"
)

func TestMain(m *testing.M) { berthd.Main(m) }

// buildBerth builds the berth binary for a test.
func buildBerth(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "berth")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

// berthCLI builds the berth binary and returns a runner against d.
func berthCLI(t *testing.T, d *berthd.Daemon) func(stdin string, args ...string) (string, int) {
	return berthRunner(t, d, buildBerth(t))
}

func berthRunner(t *testing.T, d *berthd.Daemon, bin string) func(stdin string, args ...string) (string, int) {
	return func(stdin string, args ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{"-H", "unix://" + d.Sock}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
}

// TestImageCommands drives the built berth binary against berthd: pull
// from a registry on loopback, list, save, load, remove.
// mustSucceed wraps a runner from berthCLI: the command's output, or the
// test ends if it exits non-zero.
func mustSucceed(t *testing.T, berth func(stdin string, args ...string) (string, int)) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		out, code := berth("", args...)
		if code != 0 {
			t.Fatalf("berth %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}
}

// importBusybox imports busybox-static as the image "busybox".
func importBusybox(t *testing.T, must func(args ...string) string) {
	tarball := filepath.Join(t.TempDir(), "busybox.tar")
	os.WriteFile(tarball, registry.BusyboxTar(t), 0o644)
	must("import", tarball, "busybox")
}

func TestImageCommands(t *testing.T) {
	d := berthd.Start(t)
	reg := registry.Start(t, registry.Options{})
	d.Forward(t, reg.Host)
	tb := registry.Tar(t, registry.Entry{Name: "etc/", Type: tar.TypeDir}, registry.Entry{Name: "etc/hostname", Body: "box\n"})
	reg.Push(t, "cli/app:v1", registry.Image(t, "amd64", nil, registry.Layer(t, tb, "gzip")))
	berth := berthCLI(t, d)
	must := mustSucceed(t, berth)
	out := must("pull", reg.Ref("cli/app:v1"))
	for _, want := range []string{"Pulling fs layer", "Pull complete", "Status: Downloaded newer image for"} {
		if !strings.Contains(out, want) {
			t.Errorf("pull output lacks %q:\n%s", want, out)
		}
	}
	if out := must("images"); !strings.Contains(out, reg.Ref("cli/app")+"   v1") {
		t.Errorf("images:\n%s", out)
	}
	archive := filepath.Join(t.TempDir(), "app.tar")
	must("save", "-o", archive, reg.Ref("cli/app:v1"))
	must("rmi", reg.Ref("cli/app:v1"))
	if out := must("load", "-i", archive); !strings.Contains(out, "Loaded image: "+reg.Ref("cli/app:v1")) {
		t.Errorf("load:\n%s", out)
	}
	if out, code := berth("", "pull", reg.Ref("cli/none:v1")); code == 0 || !strings.Contains(out, "not found") {
		t.Errorf("pull of a missing image: %d\n%s", code, out)
	}
	if out := must("rmi", reg.Ref("cli/app:v1")); !strings.Contains(out, "Deleted: sha256:") {
		t.Errorf("rmi:\n%s", out)
	}
	if out := must("images", "-q"); out != "" {
		t.Errorf("images after rmi: %q", out)
	}
}

// TestContainerCommands: berth run, ps, logs, exec, stop, rm against
// berthd, with docker's exit statuses.
func TestContainerCommands(t *testing.T) {
	d := berthd.Start(t)
	berth := berthCLI(t, d)
	tarball := filepath.Join(t.TempDir(), "busybox.tar")
	os.WriteFile(tarball, registry.BusyboxTar(t), 0o644)
	if out, code := berth("", "import", tarball, "busybox"); code != 0 {
		t.Fatalf("import: %s", out)
	}
	if out, code := berth("", "run", "--rm", "busybox", "echo", "hello"); out != "hello\n" || code != 0 {
		t.Errorf("run --rm: %q %d", out, code)
	}
	if _, code := berth("", "run", "--rm", "busybox", "sh", "-c", "exit 9"); code != 9 {
		t.Errorf("exit status %d, want 9", code)
	}
	if out, _ := berth("a\nb\n", "run", "-i", "--rm", "busybox", "wc", "-l"); strings.TrimSpace(out) != "2" {
		t.Errorf("run -i: %q", out)
	}
	if out, code := berth("", "run", "--rm", "--memory", "32m", "--pids-limit", "20", "-e", "A=1", "-w", "/tmp", "busybox", "sh", "-c",
		"echo $A $(pwd) $(cat /sys/fs/cgroup/pids/pids.max)"); out != "1 /tmp 20\n" || code != 0 {
		t.Errorf("options: %q %d", out, code)
	}
	if out, code := berth("", "run", "--rm", "busybox", "nosuchcmd"); code != 127 || !strings.Contains(out, "not found") {
		t.Errorf("missing command: %d %s", code, out)
	}
	out, code := berth("", "run", "-d", "--name", "bg", "busybox", "sh", "-c", "echo started; sleep 100")
	if code != 0 || len(strings.TrimSpace(out)) != 64 {
		t.Fatalf("run -d: %q %d", out, code)
	}
	time.Sleep(200 * time.Millisecond)
	if out, _ := berth("", "ps", "--format-less"); !strings.Contains(out, "unknown flag") {
		t.Errorf("unknown flag: %s", out)
	}
	if out, _ := berth("", "ps"); !strings.Contains(out, "bg") || !strings.Contains(out, "Up ") {
		t.Errorf("ps:\n%s", out)
	}
	if out, _ := berth("", "logs", "bg"); out != "started\n" {
		t.Errorf("logs: %q", out)
	}
	if out, code := berth("", "exec", "bg", "sh", "-c", "echo in; exit 4"); out != "in\n" || code != 4 {
		t.Errorf("exec: %q %d", out, code)
	}
	if out, _ := berth("", "top", "bg"); !strings.Contains(out, "sleep 100") {
		t.Errorf("top:\n%s", out)
	}
	if out, _ := berth("", "stats", "--no-stream", "bg"); !strings.Contains(out, "MEM USAGE / LIMIT") || !strings.Contains(out, " bg ") {
		t.Errorf("stats:\n%s", out)
	}
	if out, code := berth("", "pause", "bg"); code != 0 || out != "bg\n" {
		t.Errorf("pause: %q", out)
	}
	if out, _ := berth("", "ps", "-f", "status=paused", "-q"); len(strings.TrimSpace(out)) != 12 {
		t.Errorf("ps -f status=paused: %q", out)
	}
	berth("", "unpause", "bg")
	if out, code := berth("", "rm", "bg"); code == 0 || !strings.Contains(out, "container is running") {
		t.Errorf("rm of a running container: %d %s", code, out)
	}
	if out, code := berth("", "stop", "-t", "1", "bg"); out != "bg\n" || code != 0 {
		t.Errorf("stop: %q %d", out, code)
	}
	if out, _ := berth("", "inspect", "bg"); !strings.Contains(out, `"Status": "exited"`) {
		t.Errorf("inspect:\n%s", out)
	}
	if out, code := berth("", "rm", "bg"); out != "bg\n" || code != 0 {
		t.Errorf("rm: %q %d", out, code)
	}
	if out, code := berth("", "rm", "bg"); code == 0 || !strings.Contains(out, "No such container: bg") {
		t.Errorf("rm again: %d %s", code, out)
	}
}

func TestProgressPrinter(t *testing.T) {
	var tty, plain bytes.Buffer
	for _, p := range []*progressPrinter{newProgressPrinter(&tty, true), newProgressPrinter(&plain, false)} {
		p.Show(pullEvent{ID: "v1", Status: "Pulling from app"})
		p.Show(pullEvent{ID: "aaaaaaaaaaaa", Status: "Pulling fs layer"})
		p.Show(pullEvent{ID: "bbbbbbbbbbbb", Status: "Pulling fs layer"})
		p.Show(pullEvent{ID: "aaaaaaaaaaaa", Status: "Downloading", Current: 500, Total: 1000})
		p.Show(pullEvent{ID: "aaaaaaaaaaaa", Status: "Downloading", Current: 900, Total: 1000})
		p.Show(pullEvent{ID: "aaaaaaaaaaaa", Status: "Pull complete"})
	}
	// On a terminal the first layer's line (two up) is redrawn with a bar.
	if !strings.Contains(tty.String(), "\x1b[2A\x1b[2K\raaaaaaaaaaaa: Downloading [====================>") {
		t.Errorf("terminal output: %q", tty.String())
	}
	want := "v1: Pulling from app\naaaaaaaaaaaa: Pulling fs layer\nbbbbbbbbbbbb: Pulling fs layer\naaaaaaaaaaaa: Downloading\naaaaaaaaaaaa: Pull complete\n"
	if plain.String() != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", plain.String(), want)
	}
}

// TestRunTTY: berth run -it through a pty (script): a raw terminal of the
// caller's size, and ctrl-p ctrl-q detaching from a container left running.
func TestRunTTY(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("script (util-linux) is not installed")
	}
	d := berthd.Start(t)
	client := buildBerth(t)
	berth := berthRunner(t, d, client)
	tarball := filepath.Join(t.TempDir(), "busybox.tar")
	os.WriteFile(tarball, registry.BusyboxTar(t), 0o644)
	if out, code := berth("", "import", tarball, "busybox"); code != 0 {
		t.Fatalf("import: %s", out)
	}
	session := func(command string, keys ...string) (string, int) {
		cmd := exec.Command("script", "-qfec", "stty cols 90 rows 20; "+command, "/dev/null")
		in, _ := cmd.StdinPipe()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			time.Sleep(700 * time.Millisecond)
			io.WriteString(in, k)
		}
		done := make(chan error)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			return out.String(), code
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("terminal session did not end:\n%s", out.String())
		}
		return "", 0
	}
	out, code := session(client+" -H unix://"+d.Sock+" run -it --rm busybox sh", "echo hi-$((3*4))\n", "stty size\n", "exit 6\n")
	if !strings.Contains(out, "hi-12") || !strings.Contains(out, "20 90") || code != 6 {
		t.Errorf("run -it: exit %d\n%s", code, out)
	}
	out, code = session(client+" -H unix://"+d.Sock+" run -it --name stay busybox sh", "echo before\n", "\x10\x11")
	if !strings.Contains(out, "read escape sequence") || code != 0 {
		t.Errorf("detach: exit %d\n%s", code, out)
	}
	if out, _ := berth("", "inspect", "stay"); !strings.Contains(out, `"Running": true`) {
		t.Errorf("the container did not keep running after detach:\n%s", out)
	}
	berth("", "rm", "-f", "stay")
}

// TestVolumeAndSystemCommands: berth volume create (with a size limit the
// container hits) / ls / inspect / rm (refused in use) / prune, info
// naming the quota backends, and system prune.
func TestVolumeAndSystemCommands(t *testing.T) {
	d := berthd.Start(t)
	berth := berthCLI(t, d)
	must := mustSucceed(t, berth)
	importBusybox(t, must)
	if out := must("volume", "create", "--opt", "size=8m", "--label", "k=v", "small"); out != "small\n" {
		t.Errorf("volume create: %q", out)
	}
	if out := must("volume", "ls"); !strings.Contains(strings.Join(strings.Fields(out), " "), "DRIVER VOLUME NAME local small") {
		t.Errorf("volume ls:\n%s", out)
	}
	if out := must("volume", "inspect", "small"); !strings.Contains(out, `"size": "8m"`) || !strings.Contains(out, `"k": "v"`) {
		t.Errorf("volume inspect:\n%s", out)
	}
	out, _ := berth("", "run", "--rm", "-v", "small:/v", "busybox", "sh", "-c", "dd if=/dev/zero of=/v/f bs=1M count=20; ls -l /v/f")
	if !strings.Contains(out, "No space left on device") && !strings.Contains(out, "Disk quota exceeded") {
		t.Errorf("20 MiB into an 8 MiB volume:\n%s", out)
	}
	if out, code := berth("", "volume", "create", "--opt", "size", "x"); code == 0 || !strings.Contains(out, "want key=value") {
		t.Errorf("bad --opt: %d %s", code, out)
	}
	must("create", "--name", "user", "-v", "small:/v", "busybox", "true")
	if out, code := berth("", "volume", "rm", "small"); code == 0 || !strings.Contains(out, "volume is in use") {
		t.Errorf("rm of a volume in use: %d %s", code, out)
	}
	if out := must("info"); !strings.Contains(out, "Quota backend: ") || !strings.Contains(out, "Volume quota backend: ") {
		t.Errorf("info lacks the quota backends:\n%s", out)
	}
	if out := must("system", "prune"); !strings.Contains(out, "deleted container:") || !strings.Contains(out, "Total reclaimed space") {
		t.Errorf("system prune:\n%s", out)
	}
	if out := must("volume", "rm", "small"); out != "small\n" {
		t.Errorf("volume rm: %q", out)
	}
	if out := must("volume", "ls", "-q"); out != "" {
		t.Errorf("volumes left: %q", out)
	}
}

// TestNetworkCommands: berth network create/ls/rm, run on it with --ip
// and --network-alias, -p, and --bandwidth set at run and changed by
// update on the running container (seen in its tbf qdiscs).
func TestNetworkCommands(t *testing.T) {
	d := berthd.Start(t)
	berth := berthCLI(t, d)
	must := mustSucceed(t, berth)
	importBusybox(t, must)
	must("network", "create", "--subnet", "10.44.0.0/24", "app")
	if out := must("network", "ls"); !strings.Contains(out, "app") || !strings.Contains(out, "bridge") {
		t.Errorf("network ls:\n%s", out)
	}
	must("run", "-d", "--name", "db", "--network", "app", "--ip", "10.44.0.20", "--network-alias", "database", "--bandwidth", "10mbit", "busybox", "sleep", "100")
	if out, _ := berth("", "run", "--rm", "--network", "app", "busybox", "nslookup", "database"); !strings.Contains(out, "Address: 10.44.0.20") {
		t.Errorf("alias lookup:\n%s", out)
	}
	qdiscs := func() string {
		out, _ := d.InNetns("/usr/sbin/tc", "qdisc", "show")
		return out
	}
	if q := qdiscs(); !strings.Contains(q, "rate 10Mbit") {
		t.Errorf("no 10 Mbit/s tbf on the host end:\n%s", q)
	}
	must("update", "--bandwidth", "egress=3mbit,ingress=5mbit", "db")
	if q := qdiscs(); !strings.Contains(q, "rate 5Mbit") || strings.Contains(q, "rate 10Mbit") {
		t.Errorf("after update, want 5 Mbit/s on the host end (the container's ingress):\n%s", q)
	}
	if out := must("inspect", "db"); !strings.Contains(out, `"io.berth.bandwidth": "egress=3mbit,ingress=5mbit"`) {
		t.Errorf("the new limit is not kept in the label")
	}
	if out, code := berth("", "update", "--bandwidth", "fast", "db"); code == 0 || !strings.Contains(out, "invalid bandwidth") {
		t.Errorf("bad rate: %d %s", code, out)
	}
	if out, code := berth("", "run", "--rm", "--network", "none", "--bandwidth", "1mbit", "busybox", "true"); code == 0 || !strings.Contains(out, "no interface of its own") {
		t.Errorf("bandwidth without a network: %d %s", code, out)
	}
	if out, code := berth("", "network", "rm", "app"); code == 0 || !strings.Contains(out, "active endpoints") {
		t.Errorf("rm of a network in use: %d %s", code, out)
	}
	must("rm", "-f", "db")
	must("network", "rm", "app")
	if out := must("network", "ls"); strings.Contains(out, "app") {
		t.Errorf("network left:\n%s", out)
	}
}

// TestBuildCommand: berth build sends the context as .dockerignore leaves
// it (the Dockerfile always), with build args, tags and -f from outside
// the context; -q prints the ID; a failing RUN's code is the exit status.
func TestBuildCommand(t *testing.T) {
	d := berthd.Start(t)
	berth := berthCLI(t, d)
	tarball := filepath.Join(t.TempDir(), "busybox.tar")
	os.WriteFile(tarball, registry.BusyboxTar(t), 0o644)
	if out, code := berth("", "import", tarball, "busybox"); code != 0 {
		t.Fatalf("import: %s", out)
	}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"Dockerfile":    "FROM busybox\nARG V=1\nCOPY . /ctx/\nRUN echo v=$V > /v\nCMD [\"sh\", \"-c\", \"cat /v; ls -A /ctx\"]\n",
		".dockerignore": "secret\n*.log\n",
		"a.txt":         "a\n",
		"secret":        "do not send\n",
		"x.log":         "log\n",
	} {
		os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644)
	}
	out, code := berth("", "build", "-t", "built:1", "--build-arg", "V=7", dir)
	if code != 0 || !strings.Contains(out, "Successfully tagged built:1") {
		t.Fatalf("build: %d\n%s", code, out)
	}
	if out, _ := berth("", "run", "--rm", "built:1"); out != "v=7\n.dockerignore\nDockerfile\na.txt\n" {
		t.Errorf("run of the built image: %q (want the build arg and the context without the ignored files)", out)
	}
	if out, code := berth("", "build", "-q", "-t", "built:1", "--build-arg", "V=7", dir); code != 0 || !strings.HasPrefix(out, "sha256:") || strings.Count(out, "\n") != 1 {
		t.Errorf("build -q: %d %q", code, out)
	}
	failing := filepath.Join(t.TempDir(), "Dockerfile.fail")
	os.WriteFile(failing, []byte("FROM busybox\nRUN echo about to fail; exit 3\n"), 0o644)
	if out, code := berth("", "build", "-f", failing, dir); code != 3 || !strings.Contains(out, "returned a non-zero code: 3") {
		t.Errorf("failing RUN: exit %d\n%s", code, out)
	}
	if out, code := berth("", "build", filepath.Join(dir, "nope")); code == 0 || !strings.Contains(out, "unable to prepare context") {
		t.Errorf("missing context: %d %s", code, out)
	}
}
