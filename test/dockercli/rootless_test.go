package dockercli

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/test/berthd"
	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/registry"
)

// berthd run by an ordinary user: its data and exec roots in the user's
// directories, containers in its user namespace (the user as root), a
// published port reachable on the host, a volume, exec and stop.
func TestRootlessDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make the user")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("the docker CLI is not installed")
	}
	bin := berthd.Build(t)
	u := harness.NewUser(t, "bt-rd", false)
	uid, gid, home := u.UID, u.GID, u.Home
	if b, _ := os.ReadFile("/etc/subuid"); !strings.Contains(string(b), u.Name+":") {
		t.Skipf("useradd granted %s no subordinate ids (login.defs SUB_UID_COUNT)", u.Name)
	}
	for _, b := range []string{"berthd", "berth-monitor", "berth-init"} {
		u.Give(t, filepath.Join(filepath.Dir(bin), b))
	}
	binDir := home
	run := filepath.Join(home, "run")
	os.Mkdir(run, 0o700)
	tarball := filepath.Join(home, "busybox.tar")
	os.WriteFile(tarball, registry.BusyboxTar(t), 0o644)
	exec.Command("chown", "-R", fmt.Sprintf("%d:%d", uid, gid), home).Run()

	env := []string{"PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home, "XDG_RUNTIME_DIR=" + run,
		"DOCKER_HOST=unix://" + filepath.Join(run, "berth.sock"), "DOCKER_CONFIG=" + filepath.Join(home, ".docker")}
	as := func(c *exec.Cmd) *exec.Cmd {
		c.Env, c.Dir = env, home
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		return c
	}
	var log lockedBuffer
	// start runs berthd as the user; adjust, if set, changes how (in a
	// cgroup, through a wrapper).
	start := func(adjust func(*exec.Cmd), args ...string) func() {
		d := as(exec.Command(filepath.Join(binDir, "berthd"), append([]string{"--log-level", "debug", "--config-file", "/dev/null"}, args...)...))
		if adjust != nil {
			adjust(d)
		}
		log.Reset()
		d.Stdout, d.Stderr = &log, &log
		if err := d.Start(); err != nil {
			t.Fatal(err)
		}
		stopped := false
		stop := func() {
			if stopped {
				return
			}
			stopped = true
			d.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { d.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				d.Process.Kill()
				<-done
			}
			// Whatever the user still runs (its monitor) ends with it.
			killUser(uid)
			if t.Failed() {
				t.Logf("berthd's output:\n%s", log.String())
			}
		}
		t.Cleanup(stop)
		for i := 0; ; i++ {
			if out, err := as(exec.Command("docker", "version")).CombinedOutput(); err == nil {
				break
			} else if i == 100 {
				t.Fatalf("the rootless berthd did not answer: %s\n%s", out, log.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		return stop
	}
	docker := func(args ...string) (string, error) {
		out, err := as(exec.Command("docker", args...)).CombinedOutput()
		return string(out), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := docker(args...)
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	stop := start(nil)
	if _, err := os.Stat(filepath.Join(home, ".local/share/berth")); err != nil {
		t.Errorf("the data root is not under the user's XDG_DATA_HOME: %v", err)
	}
	must("import", tarball, "busybox:latest")

	// The user is the container's root; its subordinate ids the rest.
	out := must("run", "--rm", "busybox", "sh", "-c", "id -u; cat /proc/self/uid_map")
	if f := strings.Fields(out); len(f) < 4 || f[0] != "0" || f[1] != "0" || f[2] != strconv.Itoa(uid) {
		t.Errorf("ids in a rootless container: %q", out)
	}
	// A published port on the host, a volume, exec, stop.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	must("run", "-d", "--name", "web", "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), "-v", "site:/site", "busybox",
		"sh", "-c", "echo rootless > /site/index.html; exec httpd -f -p 8080 -h /site")
	var body string
	for i := 0; i < 50 && body != "rootless\n"; i++ {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/index.html", port)); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if body != "rootless\n" {
		t.Errorf("the published port answered %q", body)
	}
	if out := must("exec", "web", "cat", "/site/index.html"); out != "rootless\n" {
		t.Errorf("exec: %q", out)
	}
	var st syscall.Stat_t
	vol := filepath.Join(home, ".local/share/berth/volumes/site/_data/index.html")
	if err := syscall.Stat(vol, &st); err != nil || int(st.Uid) != uid {
		t.Errorf("the volume's file on the host: uid %d (%v), want the user's %d", st.Uid, err, uid)
	}
	must("stop", "-t", "1", "web")

	// A published UDP port: the checker's echo server, mounted in.
	echo := filepath.Join(home, "checker")
	build := exec.Command("go", "build", "-o", echo, "github.com/berth-project/berth/test/checker")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // static: the image has no libc
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the checker: %v: %s", err, out)
	}
	os.Chown(echo, uid, gid)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uport := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	must("run", "-d", "--name", "echo", "-p", fmt.Sprintf("127.0.0.1:%d:9000/udp", uport), "-v", echo+":/checker:ro", "busybox", "/checker", "udp-echo", "9000")
	uc, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", uport))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	var got string
	for i := 0; i < 50 && got != "ping"; i++ {
		uc.Write([]byte("ping"))
		uc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		b := make([]byte, 16)
		if n, err := uc.Read(b); err == nil {
			got = string(b[:n])
		}
	}
	if got != "ping" {
		t.Errorf("the published UDP port answered %q", got)
	}
	must("rm", "-f", "echo")
	must("rm", "web")
	if out := must("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left: %s", out)
	}

	// No cgroup is the user's: berthd says so, and limits are refused
	// with the reason.
	if !strings.Contains(log.String(), "is not delegated to this user") {
		t.Errorf("no warning about cgroups at start:\n%s", log.String())
	}
	if out, err := docker("run", "--rm", "-m", "64m", "busybox", "true"); err == nil || !strings.Contains(out, "limits need a cgroup") {
		t.Errorf("a memory limit without a delegated cgroup: %v %s", err, out)
	}
	stop()

	// With a cgroup delegated to the user (one per controller, made and
	// chowned here as a host's administrator would), limits work.
	parent := "/bt-rdcg" + strconv.Itoa(os.Getpid()%100000)
	var dirs []string
	ents, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range ents {
		dir := filepath.Join("/sys/fs/cgroup", e.Name(), parent)
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", e.Name(), "cgroup.procs")); err != nil {
			continue
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
		exec.Command("chown", "-R", fmt.Sprintf("%d:%d", uid, gid), dir).Run()
	}
	t.Cleanup(func() {
		// Killed processes leave it once reaped (by the host's init).
		for _, d := range dirs {
			var err error
			for range 100 {
				if err = os.Remove(d); err == nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err != nil {
				t.Errorf("remove the delegated cgroup: %v", err)
			}
		}
	})
	// On cgroup2 a process may only move within a subtree it is already
	// in: berthd starts in the delegated one, as systemd starts a user's
	// session in its own.
	var place func(*exec.Cmd)
	if v2 := filepath.Join("/sys/fs/cgroup/unified", parent); slices.Contains(dirs, v2) {
		f, err := os.Open(v2)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		place = func(c *exec.Cmd) { c.SysProcAttr.UseCgroupFD, c.SysProcAttr.CgroupFD = true, int(f.Fd()) }
	}
	stop = start(place, "--cgroup-parent", parent)
	if strings.Contains(log.String(), "is not delegated") {
		t.Errorf("a warning although the cgroup is the user's:\n%s", log.String())
	}
	out = must("run", "--rm", "-m", "64m", "--pids-limit", "20", "busybox", "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max")
	if f := strings.Fields(out); len(f) != 2 || f[0] != "67108864" || f[1] != "20" {
		t.Errorf("limits in a delegated cgroup: %q", out)
	}
	must("run", "-d", "--name", "paused", "busybox", "sleep", "100")
	must("pause", "paused")
	must("unpause", "paused")
	must("rm", "-f", "paused")
	stop()

	// Where the user may open /dev/net/tun, slirp4netns gives the daemon
	// and its containers a route out. Here a mount namespace of the test's
	// own has tun and fuse nodes the user may open, and the registry the daemon
	// pulls from and the container reaches is on the host's loopback
	// (10.0.2.2 with --rootless-host-loopback): no address off the host.
	if _, err := exec.LookPath("slirp4netns"); err != nil {
		t.Skip("slirp4netns is not installed (scripts/deps.sh installs it)")
	}
	reg := registry.Start(t, registry.Options{})
	reg.Push(t, "library/busybox:1.36", registry.Image(t, "amd64", []string{"sh"}, registry.Layer(t, registry.BusyboxTar(t), "gzip")))
	_, rport, _ := net.SplitHostPort(reg.Host)
	remote := "10.0.2.2:" + rport
	tunDir := t.TempDir()
	withTun := func(c *exec.Cmd) {
		script := `mount -t tmpfs -o mode=0755 tmpfs "$0" && mknod -m 0666 "$0/tun" c 10 200 && mount --bind "$0/tun" /dev/net/tun && ` +
			`mknod -m 0666 "$0/fuse" c 10 229 && mount --bind "$0/fuse" /dev/fuse && exec setpriv --reuid=` +
			strconv.Itoa(uid) + ` --regid=` + strconv.Itoa(gid) + ` --clear-groups "$@"`
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			t.Fatal(err)
		}
		c.Path, c.Args = unshare, append([]string{"unshare", "--mount", "--propagation", "private", "sh", "-c", script, tunDir}, c.Args...)
		c.SysProcAttr.Credential = nil
	}
	// The control: without --rootless-host-loopback, slirp4netns refuses
	// the host's loopback.
	stop = start(withTun)
	if out, err := docker("run", "--rm", "busybox", "wget", "-T", "3", "-qO-", "http://"+remote+"/v2/"); err == nil {
		t.Errorf("the host's loopback reached without --rootless-host-loopback: %s", out)
	}
	stop()
	stop = start(withTun, "--rootless-host-loopback", "--insecure-registry", remote)
	if strings.Contains(log.String(), "/dev/net/tun") {
		t.Errorf("berthd could not open the tun device it was given:\n%s", log.String())
	}
	must("pull", remote+"/library/busybox:1.36")
	if out := must("run", "--rm", remote+"/library/busybox:1.36", "wget", "-qO-", "http://"+remote+"/v2/"); strings.TrimSpace(out) != "{}" {
		t.Errorf("a container reaching the registry through slirp4netns: %q", out)
	}
	stop()

	// fuse-overlayfs, for kernels that refuse overlayfs in a user
	// namespace: the same layers, the rootfs served by its process.
	if _, err := exec.LookPath("fuse-overlayfs"); err != nil {
		t.Skip("fuse-overlayfs is not installed (scripts/deps.sh installs it)")
	}
	stop = start(withTun, "--storage-driver", "fuse-overlayfs")
	if d := strings.TrimSpace(must("info", "--format", "{{.Driver}}")); d != "fuse-overlayfs" {
		t.Errorf("docker info's storage driver: %q", d)
	}
	out = must("run", "--name", "fused", "busybox", "sh", "-c", "grep ' / / ' /proc/self/mountinfo; echo made > /made; cat /made; ls /bin/busybox")
	if !strings.Contains(out, "fuse.fuse-overlayfs") || !strings.Contains(out, "made\n/bin/busybox") {
		t.Errorf("a container on fuse-overlayfs: %q", out)
	}
	fusedID := strings.TrimSpace(must("inspect", "-f", "{{.Id}}", "fused"))
	if b, err := os.ReadFile(filepath.Join(home, ".local/share/berth/storage/rw", fusedID, "upper/made")); err != nil || string(b) != "made\n" {
		t.Errorf("the container's file in its writable layer: %q %v", b, err)
	}
	must("rm", "fused")
	waitFor(t, func() bool { return len(userProcs(uid, "fuse-overlayfs")) == 0 })
	stop()
}

// userProcs are the pids of uid's processes named comm.
func userProcs(uid int, comm string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && strings.TrimSpace(string(b)) == comm && syscall.Stat(fmt.Sprintf("/proc/%d", pid), &st) == nil && int(st.Uid) == uid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killUser kills, by pid, every process the test's user runs.
func killUser(uid int) {
	harness.KillProcesses(func(pid int) bool {
		var st syscall.Stat_t
		return syscall.Stat(fmt.Sprintf("/proc/%d", pid), &st) == nil && int(st.Uid) == uid
	})
}

// lockedBuffer is a bytes.Buffer a process writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}
