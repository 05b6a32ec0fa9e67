package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/registry"
)

// asUser runs argv as uid:gid in dir and returns its exit code, stdout and
// stderr.
func asUser(uid, gid int, dir string, argv ...string) (int, string, string) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1
		errb.WriteString(err.Error())
	}
	return code, out.String(), errb.String()
}

// berth-runtime run by an ordinary user, as runc runs: `spec --rootless`
// gives a config mapping the user to root, a container runs without a
// cgroup when the host delegates none and it asks for no limits, one that
// asks for limits is refused, and the init is exec'd from a sealed copy
// of the binary.
func TestRootlessRuntimeAsRunc(t *testing.T) {
	harness.RequireRoot(t)
	runc := harness.Runc(t)
	u := harness.NewUser(t, "bt-rl", true)
	uid, gid, home := u.UID, u.GID, u.Home
	u.Give(t, harness.RuntimeBin())
	u.Give(t, runc)
	rootfs := filepath.Join(home, "rootfs")
	os.Mkdir(rootfs, 0o755)
	cmd := exec.Command("tar", "-xf", "-", "-C", rootfs)
	cmd.Stdin = bytes.NewReader(registry.BusyboxTar(t))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rootfs: %v: %s", err, out)
	}
	exec.Command("chown", "-R", fmt.Sprintf("%d:%d", uid, gid), home).Run()

	type result struct {
		code int
		out  string
	}
	run := func(rt, id string, edit func(map[string]any)) result {
		bin := filepath.Join(home, filepath.Base(rt))
		bundle := filepath.Join(home, "b-"+filepath.Base(rt)+"-"+id)
		os.Mkdir(bundle, 0o755)
		os.Chown(bundle, uid, gid)
		if code, _, errs := asUser(uid, gid, bundle, bin, "spec", "--rootless"); code != 0 {
			t.Fatalf("%s spec --rootless: %d %s", rt, code, errs)
		}
		p := filepath.Join(bundle, "config.json")
		var cfg map[string]any
		raw, _ := os.ReadFile(p)
		json.Unmarshal(raw, &cfg)
		cfg["root"] = map[string]any{"path": rootfs, "readonly": true} // shared by the bundles
		proc := cfg["process"].(map[string]any)
		proc["terminal"] = false
		proc["args"] = []string{"sh", "-c", "id; cat /proc/self/uid_map"}
		if edit != nil {
			edit(cfg)
		}
		raw, _ = json.Marshal(cfg)
		os.WriteFile(p, raw, 0o644)
		code, out, errs := asUser(uid, gid, bundle, bin, "--root", filepath.Join(home, "state-"+filepath.Base(rt)), "run", id)
		t.Logf("%s run %s: exit %d\nstdout: %s\nstderr: %s", filepath.Base(rt), id, code, out, errs)
		return result{code: code, out: out}
	}
	// The same container under both: same exit, same ids inside.
	for _, c := range []struct {
		name string
		edit func(map[string]any)
	}{
		{"plain", nil},
		{"memory-limit", func(cfg map[string]any) {
			cfg["linux"].(map[string]any)["resources"] = map[string]any{"memory": map[string]any{"limit": 64 << 20}}
		}},
	} {
		r, b := run(runc, c.name, c.edit), run(harness.RuntimeBin(), c.name, c.edit)
		if (r.code == 0) != (b.code == 0) {
			t.Errorf("%s: runc exit %d, berth-runtime exit %d", c.name, r.code, b.code)
		}
		if r.code != 0 {
			continue
		}
		rl, bl := strings.Split(r.out, "\n"), strings.Split(b.out, "\n")
		if len(rl) < 2 || len(bl) < 2 || rl[0] != bl[0] || strings.Join(strings.Fields(rl[1]), " ") != strings.Join(strings.Fields(bl[1]), " ") {
			t.Errorf("%s: runc said %q, berth-runtime %q", c.name, r.out, b.out)
		}
		if want := fmt.Sprintf("0 %d 1", uid); strings.Join(strings.Fields(bl[1]), " ") != want {
			t.Errorf("%s: uid_map %q, want %q", c.name, bl[1], want)
		}
	}

	// Until it execs the user's program the init runs from a sealed
	// in-memory copy of the runtime, not from the user's writable file.
	bin := filepath.Join(home, filepath.Base(harness.RuntimeBin()))
	bundle := filepath.Join(home, "b-berth-runtime-plain")
	state := filepath.Join(home, "state-berth-runtime")
	// (stdio to /dev/null: the init would hold a pipe open.)
	if code, _, errs := asUser(uid, gid, bundle, "sh", "-c", `exec "$0" --root "$1" create sealed </dev/null >/dev/null 2>&1`, bin, state); code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	defer asUser(uid, gid, bundle, bin, "--root", state, "delete", "-f", "sealed")
	_, st, _ := asUser(uid, gid, bundle, bin, "--root", state, "state", "sealed")
	var s struct{ Pid int }
	json.Unmarshal([]byte(st), &s)
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", s.Pid))
	if err != nil || !strings.HasPrefix(exe, "/memfd:berth-runtime") {
		t.Errorf("the created init runs %q (%v), want the sealed memfd copy", exe, err)
	}
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/exe", s.Pid), os.O_WRONLY, 0)
	if err == nil {
		f.Close()
		t.Error("the init's binary opened for writing")
	}
}
