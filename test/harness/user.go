package harness

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// User is an ordinary user a test made, with a home of its own.
type User struct {
	Name     string
	UID, GID int
	Home     string
}

// NewUser makes a user for the test, removed (with its home and the
// subordinate ids useradd granted it) when the test ends. A system user
// gets no subordinate ids.
func NewUser(t testing.TB, prefix string, system bool) User {
	t.Helper()
	name := fmt.Sprintf("%s%d", prefix, os.Getpid()%100000)
	home := filepath.Join("/var/tmp", name)
	args := []string{"--user-group", "--home-dir", home, "--create-home", "--shell", "/bin/sh"}
	if system {
		args = append(args, "--system")
	}
	if out, err := exec.Command("useradd", append(args, name)...).CombinedOutput(); err != nil {
		t.Fatalf("useradd: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", "--remove", name).CombinedOutput(); err != nil && !strings.Contains(string(out), "mail spool") {
			t.Errorf("userdel: %v: %s", err, out)
		}
		os.RemoveAll(home)
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return User{Name: name, UID: uid, GID: gid, Home: home}
}

// Give copies the file src into the user's home, executable and owned by
// the user, and returns its path there.
func (u User) Give(t testing.TB, src string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(u.Home, filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dst, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	return dst
}

// KillProcesses sends SIGKILL, by pid, to every process but this one for
// which match says yes (processes a test started and lost track of: a
// user's daemon, a containerd's shims).
func KillProcesses(match func(pid int) bool) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if match(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
