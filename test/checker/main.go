// Command checker runs inside test containers (built static, copied into a
// synthetic rootfs) and prints what it sees of itself as JSON: ids,
// namespaces, capabilities, limits, mounts, descriptors. Tests compare the
// report with the config they gave the runtime.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-project/berth/test/checker/report"
	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) == 3 && os.Args[1] == "udp-echo" {
		udpEcho(os.Args[2])
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "reopen-exe" {
		reopenExe(os.Args[2])
		return
	}
	if len(os.Args) == 2 && os.Args[1] == "keyctl" {
		_, err := unix.AddKey("user", "berth-escape-test", []byte("x"), unix.KEY_SPEC_SESSION_KEYRING)
		report1("keyctl", err)
		return
	}
	if len(os.Args) == 2 && os.Args[1] == "name_to_handle_at" {
		_, _, err := unix.NameToHandleAt(unix.AT_FDCWD, "/", 0)
		report1("name_to_handle_at", err)
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "syscall" {
		// A raw syscall by number, all arguments 0: what the filter says.
		nr, _ := strconv.Atoi(os.Args[2])
		_, _, errno := unix.RawSyscall(uintptr(nr), 0, 0, 0)
		fmt.Printf("syscall %d: errno %d\n", nr, errno)
		return
	}
	if len(os.Args) == 2 && os.Args[1] == "euid" {
		// As Kubernetes' nonewprivs test image: run set-uid root, what
		// the process became.
		fmt.Printf("Effective uid: %d\n", os.Geteuid())
		return
	}
	if len(os.Args) == 3 && os.Args[1] == "ptrace" {
		pid, _ := strconv.Atoi(os.Args[2])
		err := unix.PtraceSeize(pid)
		if err == nil {
			_ = unix.PtraceDetach(pid)
		}
		report1("ptrace", err)
		return
	}
	var r report.Report
	// First, before the Go runtime opens its own (epoll, eventfd) descriptors.
	r.Fds = openFds()
	r.Pid, r.Ppid = os.Getpid(), os.Getppid()
	r.UID, r.GID, r.EUID, r.EGID = os.Getuid(), os.Getgid(), os.Geteuid(), os.Getegid()
	r.Groups, _ = os.Getgroups()
	r.Hostname, _ = os.Hostname()
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		r.Domainname = unix.ByteSliceToString(u.Domainname[:])
	}
	r.Cwd, _ = os.Getwd()
	r.Env = os.Environ()
	old := unix.Umask(0)
	unix.Umask(old)
	r.Umask = old
	r.NoNewPrivs, _ = unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	r.Caps = map[string]string{}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.HasPrefix(k, "Cap") {
				r.Caps[k] = strings.TrimSpace(v)
			}
		}
	}
	r.Rlimits = map[string][2]uint64{}
	for name, res := range map[string]int{"NOFILE": unix.RLIMIT_NOFILE, "NPROC": unix.RLIMIT_NPROC, "CORE": unix.RLIMIT_CORE, "STACK": unix.RLIMIT_STACK} {
		var rl unix.Rlimit
		if unix.Getrlimit(res, &rl) == nil {
			r.Rlimits[name] = [2]uint64{rl.Cur, rl.Max}
		}
	}
	r.Namespaces = map[string]string{}
	for _, ns := range []string{"cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"} {
		r.Namespaces[ns], _ = os.Readlink("/proc/self/ns/" + ns)
	}
	b, _ := os.ReadFile("/proc/self/uid_map")
	r.UIDMap = strings.Join(strings.Fields(string(b)), " ")
	b, _ = os.ReadFile("/proc/self/gid_map")
	r.GIDMap = strings.Join(strings.Fields(string(b)), " ")
	b, _ = os.ReadFile("/proc/self/oom_score_adj")
	r.OOMScoreAdj = strings.TrimSpace(string(b))
	r.Mounts = map[string]string{}
	if f, err := os.Open("/proc/self/mountinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			fl := strings.Fields(s.Text())
			if len(fl) > 5 {
				r.Mounts[fl[4]] = fl[5]
			}
		}
		f.Close()
	}
	b, _ = os.ReadFile("/proc/self/cgroup")
	r.Cgroup = string(b)
	r.Args = os.Args
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(r); err != nil {
		os.Exit(2)
	}
}

// openFds lists the descriptors open at entry, with raw system calls.
func openFds() []int {
	dir, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(dir)
	buf := make([]byte, 8192)
	var fds []int
	for {
		n, err := unix.Getdents(dir, buf)
		if err != nil || n <= 0 {
			break
		}
		_, _, names := unix.ParseDirent(buf[:n], -1, nil)
		for _, name := range names {
			fd, err := strconv.Atoi(name)
			if err != nil || fd == dir {
				continue
			}
			// The Go runtime (1.25+) keeps the cgroup CPU quota files open
			// to size GOMAXPROCS: those are the checker's own.
			if l, _ := os.Readlink("/proc/self/fd/" + name); strings.HasPrefix(l, "/sys/fs/cgroup/") {
				continue
			}
			fds = append(fds, fd)
		}
	}
	sort.Ints(fds)
	return fds
}

// reopenExe plays the attacker of CVE-2019-5736 from inside a container:
// it finds the process whose command line starts with /evil-exe (a
// runtime binary the init was made to exec), holds /proc/<pid>/exe with
// O_PATH, lets the process finish by reading the fifo it blocks on, waits
// for it to exit, then tries to reopen the binary for writing. It prints
// "WRITABLE" (and writes nothing) or the error. The test asserts EROFS.
func reopenExe(fifo string) {
	pid := ""
	for i := 0; i < 500 && pid == ""; i++ {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && strings.HasPrefix(string(b), "/evil-exe\x00") {
				pid = e.Name()
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if pid == "" {
		fmt.Println("no /evil-exe process")
		os.Exit(2)
	}
	fd, err := unix.Open("/proc/"+pid+"/exe", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Println("open O_PATH:", err)
		os.Exit(2)
	}
	target, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	fmt.Println("holding", target)
	if f, err := os.Open(fifo); err == nil {
		_, _ = io.Copy(io.Discard, f)
		f.Close()
	}
	for i := 0; i < 500; i++ {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(b), ") Z ") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	// While any runtime process still executes the binary the kernel says
	// ETXTBSY; an attacker waits that out.
	w, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	for i := 0; i < 500 && err == unix.ETXTBSY; i++ {
		time.Sleep(10 * time.Millisecond)
		w, err = unix.Open(fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		fmt.Println("reopen for writing:", err)
		return
	}
	unix.Close(w)
	fmt.Println("WRITABLE")
}

// report1 prints "<what>-ok" or "<what>: <error>".
func report1(what string, err error) {
	if err != nil {
		fmt.Printf("%s: %v\n", what, err)
		return
	}
	fmt.Printf("%s-ok\n", what)
}

// udpEcho answers every datagram on port with itself, for tests of
// published UDP ports (busybox has no UDP server).
func udpEcho(port string) {
	c, err := net.ListenPacket("udp", ":"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	buf := make([]byte, 65535)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		c.WriteTo(buf[:n], from)
	}
}
