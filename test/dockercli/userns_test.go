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

	d.must(t, "run", "-d", "--name", "ua", "-v", "shared:/s", "busybox", "sh", "-c", "echo secret > /s/secret; chmod 600 /s/secret; echo made > /madebyroot; echo mine > /private; chmod 600 /private; sleep 1000")
	aID := strings.TrimSpace(d.must(t, "inspect", "-f", "{{.Id}}", "ua"))
	aLayer := filepath.Join(bd.DataRoot, "storage/rw", aID, "upper")
	waitFor(t, func() bool { _, err := os.Stat(filepath.Join(aLayer, "private")); return err == nil })
	// b is given a's writable layer by a plain bind (readable: its root
	// directory is 0755), and shares a's volume.
	d.must(t, "run", "-d", "--name", "ub", "-v", "shared:/s", "-v", aLayer+":/other", "busybox", "sleep", "1000")
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
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(aLayer, "madebyroot"), &st); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%d:%d", st.Uid, st.Gid); got != ids["ua"] {
		t.Errorf("a file a's root made is %s on the host, want %s", got, ids["ua"])
	}
	// b's root is not a's: a's private file is closed to it, and a's
	// files are nobody's there.
	if out, err := d.docker("exec", "ub", "cat", "/other/private"); err == nil || !strings.Contains(out, "Permission denied") {
		t.Errorf("b read a's 0600 file: %v %s", err, out)
	}
	if out := d.must(t, "exec", "ub", "stat", "-c", "%u:%g", "/other/private"); strings.TrimSpace(out) != "65534:65534" {
		t.Errorf("a's file seen from b: %s, want 65534:65534 (unmapped)", out)
	}
	// The shared volume is idmapped: stored in container ids, it is every
	// user's root's, whatever their ranges.
	if out := d.must(t, "exec", "ub", "sh", "-c", "cat /s/secret && stat -c %u:%g /s/secret && echo from-b > /s/b"); strings.Fields(out)[0] != "secret" || strings.Fields(out)[1] != "0:0" {
		t.Errorf("a's 0600 file on the shared volume, from b: %q, want it read and 0:0", out)
	}
	vol := strings.TrimSpace(d.must(t, "volume", "inspect", "-f", "{{.Mountpoint}}", "shared"))
	for _, f := range []string{"secret", "b"} {
		if err := syscall.Stat(filepath.Join(vol, f), &st); err != nil || st.Uid != 0 || st.Gid != 0 {
			t.Errorf("volume file %s on the host: %d:%d (%v), want 0:0 (the container's ids)", f, st.Uid, st.Gid, err)
		}
	}
	// A host directory only the host's root may read, bound with idmap:
	// its files are the container root's.
	closed := t.TempDir()
	os.Chmod(closed, 0o700)
	os.WriteFile(filepath.Join(closed, "f"), []byte("host-root-only\n"), 0o600)
	if out := d.must(t, "run", "--rm", "-v", closed+":/c:idmap", "busybox", "sh", "-c", "cat /c/f; stat -c %u /c/f; touch /c/new"); !strings.Contains(out, "host-root-only\n0") {
		t.Errorf("idmapped bind: %q", out)
	}
	if err := syscall.Stat(filepath.Join(closed, "new"), &st); err != nil || st.Uid != 0 {
		t.Errorf("a file made through the idmapped bind: uid %d (%v), want 0", st.Uid, err)
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
		{[]string{"--userns=host", "-v", closed + ":/c:idmap"}, "idmap maps a host path through the container's user namespace, and it has none"},
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

// --userns-layers=copy (what a kernel without idmapped overlay layers
// gets by itself): a container's layers are chown-copies of its range,
// cached while it exists, removed with it; docker info says so.
func TestUsernsLayersCopied(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("the docker CLI is not installed")
	}
	const base = 3900000
	args := append([]string{"--userns-auto", "--userns-layers", "copy"}, subIDFiles(t, "nobody", "nogroup", base, 2)...)
	bd := berthd.StartWith(t, "", args...)
	d := &daemon{Daemon: bd, sock: bd.Sock, dir: bd.Dir}
	withBusybox(t, d)
	if info := d.must(t, "info"); !strings.Contains(info, "image layers chown-copied once per range") || !strings.Contains(info, "--userns-layers=copy") {
		t.Errorf("docker info does not say the layers are copied:\n%s", info)
	}
	d.must(t, "run", "-d", "--name", "cc", "busybox", "sleep", "1000")
	if out := d.must(t, "exec", "cc", "sh", "-c", "stat -c %u:%g /bin/busybox /etc; id -u; touch /made && echo ok"); strings.Join(strings.Fields(out), " ") != "0:0 0:0 0 ok" {
		t.Errorf("a container over copied layers: %q", out)
	}
	host := hostIDs(t, d.must(t, "inspect", "-f", "{{.State.Pid}}", "cc"))
	copies, _ := filepath.Glob(filepath.Join(bd.DataRoot, "storage/shifted", strings.ReplaceAll(host, ":", "-"), "*"))
	if len(copies) == 0 {
		t.Fatalf("no layer copy for range %s under %s", host, filepath.Join(bd.DataRoot, "storage/shifted"))
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(copies[0], "bin/busybox"), &st); err != nil || fmt.Sprintf("%d:%d", st.Uid, st.Gid) != host {
		t.Errorf("the copy's busybox is %d:%d (%v), want the range's root %s", st.Uid, st.Gid, err, host)
	}
	if out, err := d.docker("run", "--rm", "-v", t.TempDir()+":/x:idmap", "busybox", "true"); err == nil || !strings.Contains(out, "does not idmap") {
		t.Errorf("an idmap bind on a daemon that copies layers: %v %s", err, out)
	}
	d.must(t, "rm", "-f", "cc")
	if _, err := os.Stat(filepath.Dir(copies[0])); !os.IsNotExist(err) {
		t.Errorf("the range's layer copies after rm: %v", err)
	}
}
