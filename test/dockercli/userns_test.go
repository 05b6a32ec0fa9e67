package dockercli

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/test/berthd"
)

// subIDFiles writes subuid and subgid files granting user (and the group
// of the same name) blocks ranges of 65536 ids from start.
func subIDFiles(t *testing.T, user, group string, start, blocks int) []string {
	t.Helper()
	dir := t.TempDir()
	uid, gid := filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")
	os.WriteFile(uid, fmt.Appendf(nil, "someone:100000:65536\n%s:%d:%d\n", user, start, blocks*65536), 0o644)
	os.WriteFile(gid, fmt.Appendf(nil, "%s:%d:%d\n", group, start, blocks*65536), 0o644)
	return []string{"--subuid-file", uid, "--subgid-file", gid}
}

// hostIDs are the uid and gid of pid as the host sees them.
func hostIDs(t *testing.T, pid string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strings.TrimSpace(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var uid, gid string
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "Uid:" {
			uid = f[1]
		} else if len(f) > 1 && f[0] == "Gid:" {
			gid = f[1]
		}
	}
	return uid + ":" + gid
}

// With --userns-auto every container's root is a host user of a range no
// other container has; the ranges are recorded, survive kill -9 of
// berthd, and go back to the pool at rm. What cannot work in a user
// namespace, or would not be readable there, is refused and leaves
// nothing behind.
func TestUsernsAutoRangesAreDisjointAndKept(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("the docker CLI is not installed")
	}
	const base = 3300000
	// Four blocks: the first is --userns-remap's shared one, three are
	// for auto containers.
	args := append([]string{"--userns-remap", "nobody:nogroup", "--userns-auto"}, subIDFiles(t, "nobody", "nogroup", base, 4)...)
	bd := berthd.StartWith(t, "", args...)
	d := &daemon{Daemon: bd, sock: bd.Sock, dir: bd.Dir}
	withBusybox(t, d)

	d.must(t, "run", "-d", "--name", "ua", "-v", "shared:/s", "busybox", "sh", "-c", "echo secret > /s/secret; chmod 600 /s/secret; echo made > /madebyroot; sleep 1000")
	d.must(t, "run", "-d", "--name", "ub", "-v", "shared:/s", "busybox", "sleep", "1000")
	ids := map[string]string{}
	for _, c := range []string{"ua", "ub"} {
		pid := d.must(t, "inspect", "-f", "{{.State.Pid}}", c)
		ids[c] = hostIDs(t, pid)
		inside := strings.Fields(d.must(t, "exec", c, "cat", "/proc/self/uid_map"))
		host, _, _ := strings.Cut(ids[c], ":")
		if len(inside) != 3 || inside[0] != "0" || inside[1] != host || inside[2] != "65536" {
			t.Errorf("%s: uid_map %v, its root is host uid %s", c, inside, host)
		}
		if id := strings.TrimSpace(d.must(t, "exec", c, "id", "-u")); id != "0" {
			t.Errorf("%s: root inside is uid %s", c, id)
		}
	}
	if ids["ua"] == ids["ub"] || ids["ua"] == fmt.Sprintf("%d:%d", base, base) || ids["ub"] == fmt.Sprintf("%d:%d", base, base) {
		t.Fatalf("ranges not disjoint from each other and the shared one: a %s, b %s", ids["ua"], ids["ub"])
	}
	// A file the container's root made is its host user's on the host.
	aID := strings.TrimSpace(d.must(t, "inspect", "-f", "{{.Id}}", "ua"))
	var st syscall.Stat_t
	waitFor(t, func() bool {
		return syscall.Stat(filepath.Join(bd.DataRoot, "storage/rw", aID, "upper/madebyroot"), &st) == nil
	})
	if got := fmt.Sprintf("%d:%d", st.Uid, st.Gid); got != ids["ua"] {
		t.Errorf("a file a's root made is %s on the host, want %s", got, ids["ua"])
	}
	// b's root is not a's: a's private file is closed to it.
	if out, err := d.docker("exec", "ub", "cat", "/s/secret"); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("b read a's 0600 file: %v %s", err, out)
	}
	// cp and export speak the container's ids.
	if out := d.must(t, "exec", "ua", "stat", "-c", "%u", "/madebyroot"); strings.TrimSpace(out) != "0" {
		t.Errorf("owner inside: %s", out)
	}

	// The pool is down to one block: c gets it, d is refused, and no
	// half-made container is left.
	d.must(t, "run", "-d", "--name", "uc", "busybox", "sleep", "1000")
	out, err := d.docker("run", "-d", "--name", "ud", "busybox", "true")
	if err == nil || !strings.Contains(out, "no free user namespace range") || !strings.Contains(out, "nobody") {
		t.Fatalf("an exhausted pool: %v %s", err, out)
	}
	if out := d.must(t, "ps", "-aq", "--filter", "name=^ud$"); strings.TrimSpace(out) != "" {
		t.Errorf("a refused container was left: %s", out)
	}
	if rw, _ := os.ReadDir(filepath.Join(bd.DataRoot, "storage/rw")); len(rw) != 3 {
		t.Errorf("%d writable layers, want 3 (a, b, c)", len(rw))
	}
	// --userns=host opts out.
	if out := strings.Fields(d.must(t, "run", "--rm", "--userns=host", "busybox", "cat", "/proc/self/uid_map")); len(out) != 3 || out[1] != "0" {
		t.Errorf("--userns=host: uid_map %v", out)
	}

	// kill -9: the ranges are the records', not berthd's memory.
	d.kill9()
	d.start(t)
	if got := hostIDs(t, d.must(t, "inspect", "-f", "{{.State.Pid}}", "ua")); got != ids["ua"] {
		t.Errorf("a after berthd's restart: %s, was %s", got, ids["ua"])
	}
	if out, err := d.docker("run", "-d", "--name", "ud", "busybox", "true"); err == nil {
		t.Errorf("after the restart a taken range was handed out again: %s", out)
	}
	// rm gives the range back.
	d.must(t, "rm", "-f", "ua")
	d.must(t, "run", "-d", "--name", "ud", "busybox", "sleep", "1000")
	if got := hostIDs(t, d.must(t, "inspect", "-f", "{{.State.Pid}}", "ud")); got != ids["ua"] {
		t.Errorf("d got %s, want a's freed range %s", got, ids["ua"])
	}
}

// What cannot work in a user namespace is refused with the reason, and a
// bind the container's root could not read is named before anything is
// made.
func TestUsernsRefusals(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("the docker CLI is not installed")
	}
	args := append([]string{"--userns-remap", "nobody:nogroup"}, subIDFiles(t, "nobody", "nogroup", 3600000, 1)...)
	bd := berthd.StartWith(t, "", args...)
	d := &daemon{Daemon: bd, sock: bd.Sock, dir: bd.Dir}
	withBusybox(t, d)
	closed := t.TempDir()
	os.Chmod(closed, 0o700)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--privileged"}, "--privileged cannot be used with a user namespace"},
		{[]string{"--network", "host"}, "--network=host cannot be used"},
		{[]string{"--pid", "host"}, "--pid=host cannot be used"},
		{[]string{"--device", "/dev/null"}, "--device (host devices) cannot be used"},
		{[]string{"-v", closed + ":/c"}, "is not readable by the container's root, host uid 3600000"},
	} {
		out, err := d.docker(append(append([]string{"run", "--rm"}, c.args...), "busybox", "true")...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("run %v: %v %s; want an error with %q", c.args, err, out, c.want)
		}
	}
	if out := d.must(t, "ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("refused containers were left: %s", out)
	}
	// The shared mapping: every container's root is the remap user's
	// first id; the root's edits to /etc/hosts work as without.
	out := d.must(t, "run", "--rm", "busybox", "sh", "-c", "cat /proc/self/uid_map; echo 10.9.9.9 x >> /etc/hosts && echo hosts-ok")
	if f := strings.Fields(out); len(f) < 4 || f[1] != "3600000" || f[3] != "hosts-ok" {
		t.Errorf("remapped run: %q", out)
	}
	info := d.must(t, "info", "--format", "{{.SecurityOptions}}")
	if !strings.Contains(info, "name=userns") {
		t.Errorf("docker info's security options: %s", info)
	}
}

// A remap user the subordinate id files grant nothing stops berthd at
// start with the reason.
func TestUsernsRemapWithoutRangesFails(t *testing.T) {
	bd := berthd.Start(t) // builds the binary
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("someone:100000:65536\n"), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bd.Binary(), "-H", "unix://"+filepath.Join(dir, "s.sock"), "--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"), "--pidfile", filepath.Join(dir, "pid"), "--config-file", "/dev/null",
		"--userns-remap", "nobody:nogroup", "--subuid-file", empty, "--subgid-file", empty, "--bridge", "bt-none0")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "grant no range of 65536 ids") || !strings.Contains(string(out), "nobody:100000:65536") {
		t.Errorf("berthd with a remap user without ranges: %v\n%s", err, out)
	}
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("timed out waiting")
}
