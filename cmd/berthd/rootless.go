package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/network"
	"github.com/berth-project/berth/userns"
)

// Rootless berthd: run by an ordinary user, berthd starts itself again as
// root of a user namespace of its own (the user's uid as 0, its
// subordinate ids from 1, mapped by newuidmap and newgidmap), with a mount
// and a network namespace of its own. The parent stays in the host's
// network namespace: it opens the host ports containers publish and hands
// the listening sockets to the daemon, which proxies their connections to
// the containers. Where the user may open /dev/net/tun, slirp4netns gives
// the daemon's namespace a route out (pulls, containers' traffic);
// elsewhere there is none, and berthd says so. The parent relays signals
// and ends slirp4netns with the daemon.

// rootlessChildEnv marks the daemon started in the namespaces; its value
// is the descriptor it waits on until its id maps are written. The next
// descriptor is its end of the port socket (portParent).
const rootlessChildEnv = "_BERTH_ROOTLESS_CHILD"

// rootlessDefaults moves an ordinary user's daemon under its home and
// runtime directories, unless the flags say otherwise. It returns them as
// flags for the daemon in the namespaces, where the user is uid 0.
func rootlessDefaults(cmd *cobra.Command, cfg *config) ([]string, error) {
	var args []string
	run := os.Getenv("XDG_RUNTIME_DIR")
	if run == "" {
		run = filepath.Join(os.TempDir(), fmt.Sprintf("berth-%d", os.Getuid()))
	}
	data := os.Getenv("XDG_DATA_HOME")
	if data == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("rootless: no home directory for the data root: %w", err)
		}
		data = filepath.Join(home, ".local", "share")
	}
	set := func(flag string, v *string, val string) {
		if !cmd.Flags().Changed(flag) {
			*v = val
			args = append(args, "--"+flag, val)
		}
	}
	set("data-root", &cfg.DataRoot, filepath.Join(data, "berth"))
	set("exec-root", &cfg.ExecRoot, filepath.Join(run, "berth"))
	set("pidfile", &cfg.Pidfile, filepath.Join(run, "berth", "berthd.pid"))
	if !cmd.Flags().Changed("host") {
		cfg.Hosts = []string{"unix://" + filepath.Join(run, "berth.sock")}
		args = append(args, "--host", cfg.Hosts[0])
	}
	return args, nil
}

// runRootlessParent starts the daemon in its namespaces and waits for it.
func runRootlessParent(cfg config, extraArgs []string) error {
	u, err := user.Current()
	if err != nil {
		return err
	}
	uids, err := userns.ReadSubIDs(cfg.SubuidFile, u.Username, os.Getuid())
	if err != nil {
		return err
	}
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		return err
	}
	gids, err := userns.ReadSubIDs(cfg.SubgidFile, u.Username, os.Getgid())
	if err == nil && len(gids) == 0 {
		gids, err = userns.ReadSubIDs(cfg.SubgidFile, g.Name, os.Getgid())
	}
	if err != nil {
		return err
	}
	if len(uids) == 0 || len(gids) == 0 {
		return fmt.Errorf("rootless: %s grant user %s no subordinate ids: add a line such as %s:100000:65536 to %s and %s (usermod --add-subuids / --add-subgids)",
			strings.Join([]string{cfg.SubuidFile, cfg.SubgidFile}, " and "), u.Username, u.Username, cfg.SubuidFile, cfg.SubgidFile)
	}
	for _, bin := range []string{"newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(bin); err != nil {
			return fmt.Errorf("rootless: %s is missing (Debian package uidmap)", bin)
		}
	}
	if err := os.MkdirAll(cfg.ExecRoot, 0o700); err != nil {
		return err
	}
	wait, ready, err := os.Pipe()
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.Command(self, append(os.Args[1:], extraArgs...)...)
	child.Stdin, child.Stdout, child.Stderr = os.Stdin, os.Stdout, os.Stderr
	ports, err := newPortParent()
	if err != nil {
		return err
	}
	child.ExtraFiles = []*os.File{wait, ports.child}
	child.Env = append(os.Environ(), rootlessChildEnv+"=3")
	child.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWNET,
		Pdeathsig:  syscall.SIGKILL,
	}
	if err := child.Start(); err != nil {
		return fmt.Errorf("rootless: start the daemon in a user namespace: %w", err)
	}
	wait.Close()
	ports.child.Close()
	go ports.serve()
	pid := strconv.Itoa(child.Process.Pid)
	fail := func(err error) error {
		child.Process.Kill()
		child.Wait()
		return err
	}
	for bin, args := range map[string][]string{"newuidmap": mapArgs(pid, os.Getuid(), uids), "newgidmap": mapArgs(pid, os.Getgid(), gids)} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			return fail(fmt.Errorf("rootless: %s %s: %v: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(string(out))))
		}
	}
	if tun, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0); err != nil {
		fmt.Fprintf(os.Stderr, "berthd: rootless: no route out of the host for the daemon and its containers (pulls from registries fail; load and import work, and published ports): user %s cannot open /dev/net/tun, which slirp4netns needs: %v\n", u.Username, err)
	} else {
		tun.Close()
		slirp, err := startSlirp(pid, cfg.RootlessHostLoopback)
		if err != nil {
			return fail(err)
		}
		defer func() {
			slirp.Process.Kill()
			slirp.Wait()
		}()
	}
	ready.Write([]byte{1})
	ready.Close()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		for s := range sigs {
			child.Process.Signal(s)
		}
	}()
	err = child.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		os.Exit(ee.ExitCode())
	}
	return err
}

// startSlirp starts slirp4netns for the network namespace of pid and
// waits until it has configured tap0 there (address 10.0.2.100, the
// default route through 10.0.2.2, DNS at 10.0.2.3), so that the daemon
// starts with its route out. hostLoopback lets 10.0.2.2 reach the host's
// loopback.
func startSlirp(pid string, hostLoopback bool) (*exec.Cmd, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	args := []string{"--configure", "--mtu=65520", "--ready-fd=3"}
	if !hostLoopback {
		args = append(args, "--disable-host-loopback")
	}
	var out lockedOutput
	slirp := exec.Command("slirp4netns", append(args, pid, "tap0")...)
	slirp.ExtraFiles = []*os.File{w}
	slirp.Stdout, slirp.Stderr = &out, &out
	slirp.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = slirp.Start()
	w.Close()
	if err != nil {
		return nil, fmt.Errorf("rootless: slirp4netns: %w", err)
	}
	r.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 1)
	if _, err := r.Read(b); err != nil {
		slirp.Process.Kill()
		slirp.Wait()
		return nil, fmt.Errorf("rootless: slirp4netns did not configure the daemon's network namespace: %v: %s", err, strings.TrimSpace(out.String()))
	}
	return slirp, nil
}

// lockedOutput collects a child's output while it runs.
type lockedOutput struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedOutput) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// mapArgs are newuidmap's (or newgidmap's) arguments for pid: own as 0,
// then the subordinate ranges one after the other from 1.
func mapArgs(pid string, own int, ranges []userns.Range) []string {
	args := []string{pid, "0", strconv.Itoa(own), "1"}
	next := uint64(1)
	for _, r := range ranges {
		args = append(args, strconv.FormatUint(next, 10), strconv.FormatUint(uint64(r.Start), 10), strconv.FormatUint(uint64(r.Size), 10))
		next += uint64(r.Size)
	}
	return args
}

// rootlessChildSetup runs first in the daemon started by the parent: it
// waits until its id maps are written, then executes itself again, now as
// uid 0 of the namespace, which gives it the namespace's capabilities (the
// first exec ran with no uid mapped, and so with none), and makes its
// mounts private.
func rootlessChildSetup(fd string) error {
	if fd != "mapped" {
		n, err := strconv.Atoi(fd)
		if err != nil {
			return fmt.Errorf("%s=%q", rootlessChildEnv, fd)
		}
		f := os.NewFile(uintptr(n), "rootless-ready")
		b := make([]byte, 1)
		if _, err := f.Read(b); err != nil {
			return fmt.Errorf("rootless: the parent did not map this namespace's ids: %w", err)
		}
		f.Close()
		os.Setenv(rootlessChildEnv, "mapped")
		return syscall.Exec("/proc/self/exe", os.Args, os.Environ())
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("rootless: make mounts private: %w", err)
	}
	// The network namespace is new: its loopback starts down.
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("rootless: bring up loopback: %w", err)
	}
	os.Unsetenv(rootlessChildEnv)
	return nil
}

// rootlessCgroupWarning says, if so, that the cgroup parent is not the
// user's to write: containers then run without cgroups and limits are
// refused.
func rootlessCgroupWarning(parent string) []string {
	if parent == "" {
		parent = "/" + cgroups.DefaultParent
	}
	dir := filepath.Join(cgroups.Root, "memory", parent)
	if cgroups.HostMode() == cgroups.Unified {
		dir = filepath.Join(cgroups.Root, parent)
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			if unix.Access(d, unix.W_OK) == nil {
				return nil
			}
			break
		}
		if d == cgroups.Root || d == "/" {
			break
		}
	}
	return []string{fmt.Sprintf("rootless: the cgroup parent %s is not delegated to this user: containers run without cgroups, and limits (--memory, --cpus, --pids-limit), pause and stats are refused; give --cgroup-parent a cgroup the user owns", parent)}
}

// portParent opens host ports for the daemon in its namespaces: a
// request is "tcp HOST:PORT" on a datagram socket pair, the answer the
// listening socket (SCM_RIGHTS) and "ok", or an error's text.
type portParent struct {
	conn  *net.UnixConn
	child *os.File
}

func newPortParent() (*portParent, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fds[0]), "ports")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		syscall.Close(fds[1])
		return nil, err
	}
	return &portParent{conn: c.(*net.UnixConn), child: os.NewFile(uintptr(fds[1]), "ports-child")}, nil
}

func (p *portParent) serve() {
	buf := make([]byte, 256)
	for {
		n, err := p.conn.Read(buf)
		if err != nil || n == 0 {
			return
		}
		proto, addr, _ := strings.Cut(string(buf[:n]), " ")
		var oob []byte
		var sent *os.File
		reply := "ok"
		f, err := hostSocket(proto, addr)
		if err != nil {
			reply = err.Error()
		} else {
			oob, sent = syscall.UnixRights(int(f.Fd())), f
		}
		p.conn.WriteMsgUnix([]byte(reply), oob, nil)
		if sent != nil {
			sent.Close() // the daemon has its own copy now
		}
	}
}

// hostSocket opens a listening TCP socket or a bound UDP socket on the
// host, as a file to hand over.
func hostSocket(proto, addr string) (*os.File, error) {
	switch proto {
	case "tcp":
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		defer l.Close()
		return l.(*net.TCPListener).File()
	case "udp":
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return c.(*net.UDPConn).File()
	}
	return nil, fmt.Errorf("protocol %q", proto)
}

// portProxy is the daemon's side: the network manager's ForwardPorts
// hook. Each forwarded port is a listening socket on the host, opened by
// the parent, whose connections it proxies to the container.
type portProxy struct {
	conn *net.UnixConn
	mu   sync.Mutex
	open map[network.HostPort]io.Closer
}

func newPortProxy(fd int) (*portProxy, error) {
	f := os.NewFile(uintptr(fd), "ports")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("rootless: the port socket: %w", err)
	}
	return &portProxy{conn: c.(*net.UnixConn), open: map[network.HostPort]io.Closer{}}, nil
}

// listen asks the parent for a socket on the host: a net.Listener for
// tcp, a net.PacketConn for udp.
func (p *portProxy) listen(proto, addr string) (io.Closer, error) {
	if _, err := p.conn.Write([]byte(proto + " " + addr)); err != nil {
		return nil, err
	}
	buf, oob := make([]byte, 512), make([]byte, syscall.CmsgSpace(4))
	n, oobn, _, _, err := p.conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	if string(buf[:n]) != "ok" {
		return nil, fmt.Errorf("%s", buf[:n])
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("no socket from the rootless parent")
	}
	fds, err := syscall.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("no socket from the rootless parent")
	}
	f := os.NewFile(uintptr(fds[0]), addr)
	defer f.Close()
	if proto == "udp" {
		return net.FilePacketConn(f)
	}
	return net.FileListener(f)
}

// Forward makes the forwarded ports exactly want.
func (p *portProxy) Forward(want []network.HostPort) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := map[network.HostPort]bool{}
	for _, hp := range want {
		keep[hp] = true
	}
	for hp, l := range p.open {
		if !keep[hp] {
			l.Close()
			delete(p.open, hp)
		}
	}
	var errs []string
	for _, hp := range want {
		if _, ok := p.open[hp]; ok {
			continue
		}
		host := ""
		if hp.HostIP.IsValid() {
			host = hp.HostIP.String()
		}
		addr := net.JoinHostPort(host, strconv.Itoa(int(hp.Port)))
		l, err := p.listen(hp.Proto, addr)
		if err != nil {
			errs = append(errs, fmt.Sprintf("publish %s/%s on the host: %v", addr, hp.Proto, err))
			continue
		}
		p.open[hp] = l
		if pc, ok := l.(net.PacketConn); ok {
			go proxyUDP(pc, hp.Target.String())
		} else {
			go proxy(l.(net.Listener), hp.Target.String())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// proxy copies each connection l accepts to and from target, until l is
// closed.
func proxy(l net.Listener, target string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			t, err := net.DialTimeout("tcp", target, 10*time.Second)
			if err != nil {
				return
			}
			defer t.Close()
			done := make(chan struct{})
			go func() {
				io.Copy(t, c)
				t.(*net.TCPConn).CloseWrite()
				close(done)
			}()
			io.Copy(c, t)
			c.(*net.TCPConn).CloseWrite()
			<-done
		}()
	}
}

// udpIdle is how long a UDP client's flow to the container lasts without
// traffic.
const udpIdle = 90 * time.Second

// proxyUDP relays datagrams between the host socket pc and target: each
// client address gets a socket of its own towards the container, whose
// replies go back to that client, until it is idle for udpIdle.
func proxyUDP(pc net.PacketConn, target string) {
	var mu sync.Mutex
	flows := map[string]net.Conn{}
	buf := make([]byte, 65535)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			mu.Lock()
			for _, c := range flows {
				c.Close()
			}
			mu.Unlock()
			return
		}
		mu.Lock()
		c, ok := flows[from.String()]
		if !ok {
			if c, err = net.Dial("udp", target); err != nil {
				mu.Unlock()
				continue
			}
			flows[from.String()] = c
			go func(c net.Conn, from net.Addr) {
				back := make([]byte, 65535)
				for {
					c.SetReadDeadline(time.Now().Add(udpIdle))
					n, err := c.Read(back)
					if err != nil {
						break
					}
					pc.WriteTo(back[:n], from)
				}
				mu.Lock()
				delete(flows, from.String())
				mu.Unlock()
				c.Close()
			}(c, from)
		}
		mu.Unlock()
		c.Write(buf[:n])
	}
}
