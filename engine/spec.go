package engine

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/container/capabilities"
	"github.com/berth-project/berth/container/rootfs"
	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/logfile"
	berthnet "github.com/berth-project/berth/network"
	"github.com/berth-project/berth/seccomp"
	"github.com/berth-project/berth/storage/quota"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// InitPath is where `--init` puts berth-init in the container.
const InitPath = "/sbin/berth-init"

// InitBinary is the berth-init binary bound in for --init.
func (e *Engine) InitBinary() (string, error) { return e.initBinary() }

// initBinary finds berth-init: Options.InitBinary, beside this
// executable, or in $PATH.
func (e *Engine) initBinary() (string, error) {
	if e.o.InitBinary != "" {
		return e.o.InitBinary, nil
	}
	if self, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(self), "berth-init"); fileExists(p) {
			return p, nil
		}
	}
	if p, err := exec.LookPath("berth-init"); err == nil {
		return p, nil
	}
	return "", errdefs.New(errdefs.ErrUnavailable, "--init: berth-init is neither beside berthd nor in $PATH (scripts/build.sh builds it)")
}

// defaultCaps are docker's default capabilities.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// validateHostConfig refuses what berthd cannot honour, naming it, and
// returns docker's warnings for what it adjusts.
func validateHostConfig(hc *ctypes.HostConfig) ([]string, error) {
	invalid := func(f string, a ...any) ([]string, error) {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf(f, a...))
	}
	for _, b := range hc.Binds {
		if _, err := parseBind(b); err != nil {
			return nil, err
		}
	}
	for _, m := range hc.Mounts {
		if m.Type != mount.TypeBind && m.Type != mount.TypeTmpfs && m.Type != mount.TypeVolume {
			return invalid("mount type %q is not supported (bind, volume and tmpfs are)", m.Type)
		}
		if m.Type == mount.TypeBind {
			if _, err := os.Stat(m.Source); err != nil {
				return invalid("invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source)
			}
		}
	}
	if _, err := storageSize(hc); err != nil {
		return nil, err
	}
	if hc.Memory != 0 && hc.Memory < 6*1024*1024 {
		return invalid("Minimum memory limit allowed is 6MB")
	}
	if hc.CPURealtimePeriod != 0 || hc.CPURealtimeRuntime != 0 {
		return invalid("CPU real-time limits (--cpu-rt-period, --cpu-rt-runtime) are not supported by berthd")
	}
	if hc.NanoCPUs != 0 && (hc.CPUQuota != 0 || hc.CPUPeriod != 0) {
		return invalid("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	sec, err := parseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return nil, err
	}
	var warnings []string
	if sec.apparmor != "" && sec.apparmor != "unconfined" {
		warnings = append(warnings, fmt.Sprintf("AppArmor profile %q not applied: this host has no AppArmor", sec.apparmor))
	}
	if hc.NanoCPUs > 0 {
		if n := int64(runtime.NumCPU()); hc.NanoCPUs > n*1e9 {
			return invalid("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", n, n)
		}
	}
	for _, d := range hc.Devices {
		if _, err := deviceNode(d); err != nil {
			return nil, err
		}
	}
	rp := hc.RestartPolicy
	switch rp.Name {
	case "", ctypes.RestartPolicyDisabled, ctypes.RestartPolicyAlways, ctypes.RestartPolicyUnlessStopped:
		if rp.MaximumRetryCount != 0 {
			return invalid("invalid restart policy: maximum retry count can only be used with 'on-failure'")
		}
	case ctypes.RestartPolicyOnFailure:
		if rp.MaximumRetryCount < 0 {
			return invalid("invalid restart policy: maximum retry count cannot be negative")
		}
	default:
		return invalid("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", rp.Name)
	}
	if hc.AutoRemove && rp.Name != "" && rp.Name != ctypes.RestartPolicyDisabled {
		return invalid("can't create 'AutoRemove' container with restart policy")
	}
	return warnings, nil
}

// securityOpts are the --security-opt values, in docker's "k=v" and older
// "k:v" forms.
type securityOpts struct {
	unconfinedSeccomp bool
	seccomp           *specs.LinuxSeccomp // a profile of the user's
	noNewPrivs        bool
	unconfinedPaths   bool   // systempaths=unconfined
	apparmor          string // accepted, and not applied: the host has no AppArmor
}

func parseSecurityOpts(list []string) (securityOpts, error) {
	var o securityOpts
	for _, opt := range list {
		if opt == "no-new-privileges" {
			o.noNewPrivs = true
			continue
		}
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok {
			return o, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid --security-opt 1: %q", opt))
		}
		switch k {
		case "seccomp":
			switch v {
			case "unconfined":
				o.unconfinedSeccomp = true
			case "builtin", "":
			default:
				// The docker CLI sends a profile file's content.
				p, err := seccomp.ParseProfile([]byte(v))
				if err != nil {
					return o, errdefs.New(errdefs.ErrInvalid, "seccomp profile: "+err.Error())
				}
				o.seccomp = p
			}
		case "no-new-privileges":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, errdefs.New(errdefs.ErrInvalid, "invalid --security-opt 2: \""+opt+"\"")
			}
			o.noNewPrivs = b
		case "apparmor":
			o.apparmor = v
		case "label":
			// SELinux labels: this host has no SELinux; accepted as docker does.
		case "systempaths":
			if v != "unconfined" {
				return o, errdefs.New(errdefs.ErrInvalid, "invalid --security-opt 2: \""+opt+"\"")
			}
			o.unconfinedPaths = true
		default:
			return o, errdefs.New(errdefs.ErrInvalid, "invalid --security-opt 2: \""+opt+"\"")
		}
	}
	return o, nil
}

// storageSize reads --storage-opt size= (0 when not given); any other
// option is refused, naming it.
func storageSize(hc *ctypes.HostConfig) (int64, error) {
	var size int64
	for k, v := range hc.StorageOpt {
		if k != "size" {
			return 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown storage option %q: berthd knows only size", k))
		}
		n, err := logfile.ParseSize(v)
		if err != nil || n <= 0 {
			return 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid storage option size=%q: want a size such as 512m or 10G", v))
		}
		if n < quota.MinSize {
			return 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("storage option size=%s is below the smallest quota, %dMB", v, quota.MinSize>>20))
		}
		size = n
	}
	return size, nil
}

// bind is a parsed -v source:destination[:options]; a source that is not
// an absolute path names a volume.
type bind struct {
	src, dst string
	ro       bool
	nocopy   bool
	volume   bool
	idmap    bool // a host path seen through the container's mapping (Podman's idmap)
}

func parseBind(s string) (bind, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return bind{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid volume specification: '%s'", s))
	}
	b := bind{src: parts[0], dst: parts[1], volume: !filepath.IsAbs(parts[0])}
	if !filepath.IsAbs(b.dst) {
		return bind{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid volume specification: '%s': invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", s, b.dst))
	}
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				b.ro = true
			case "nocopy":
				b.nocopy = true
			case "idmap":
				b.idmap = true
			case "rw", "z", "Z", "rprivate", "private", "rshared", "shared", "rslave", "slave":
			default:
				return bind{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid mode: %s", o))
			}
		}
	}
	return b, nil
}

func exposed(ports []string) network.PortSet {
	set := network.PortSet{}
	for _, p := range ports {
		if port, err := network.ParsePort(p); err == nil {
			set[port] = struct{}{}
		}
	}
	return set
}

// files are the per-container files bind-mounted over /etc.
type files struct{ hostname, hosts, resolv string }

// etcFilesOf are the /etc files of the container whose directory is dir.
func etcFilesOf(dir string) files {
	return files{filepath.Join(dir, "hostname"), filepath.Join(dir, "hosts"), filepath.Join(dir, "resolv.conf")}
}

// writeEtcFiles writes /etc/hostname, /etc/hosts and /etc/resolv.conf for c.
// With --network container:NAME, as dockerd, they are NAME's files and
// r takes NAME's host and domain name (r is the run's copy).
func (e *Engine) writeEtcFiles(r *Record, sb *berthnet.Sandbox) (files, error) {
	if other, ok := strings.CutPrefix(string(r.HostConfig.NetworkMode), "container:"); ok {
		o, err := e.Record(other)
		if err != nil {
			return files{}, err
		}
		cfg := *r.Config
		cfg.Hostname, cfg.Domainname = o.Config.Hostname, o.Config.Domainname
		r.Config = &cfg
		return etcFilesOf(e.containerDir(o.ID)), nil
	}
	f := etcFilesOf(e.containerDir(r.ID))
	hostname := r.Config.Hostname
	if r.HostConfig.NetworkMode == "host" {
		hostname, _ = os.Hostname()
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	if r.HostConfig.NetworkMode == "host" {
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts = string(b)
		}
	}
	if sb != nil && len(sb.Endpoints) > 0 {
		// As docker: the container's own address under its hostname.
		hosts += sb.Endpoints[0].IP.String() + "\t" + hostname + "\n"
		if ip6 := sb.Endpoints[0].IP6; ip6.IsValid() {
			hosts += ip6.String() + "\t" + hostname + "\n"
		}
	}
	for _, h := range r.HostConfig.ExtraHosts {
		name, addr, ok := strings.Cut(h, ":")
		if !ok {
			return f, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid extra host %q: want name:address", h))
		}
		if addr == "host-gateway" {
			gw, err := e.hostGateway(sb)
			if err != nil {
				return f, err
			}
			addr = gw
		}
		hosts += addr + "\t" + name + "\n"
	}
	if err := os.WriteFile(f.hostname, []byte(hostname+"\n"), 0o644); err != nil {
		return f, err
	}
	if err := os.WriteFile(f.hosts, []byte(hosts), 0o644); err != nil {
		return f, err
	}
	embedded := sb != nil && networkName(r.HostConfig) != berthnet.DefaultName
	if err := os.WriteFile(f.resolv, []byte(resolvConf(r.HostConfig, embedded)), 0o644); err != nil {
		return f, err
	}
	// The container's root may edit them, as without a user namespace.
	return f, chownToRoot(r.IDMap, f.hostname, f.hosts, f.resolv)
}

// resolvConf is the host's resolv.conf; in a network namespace of its own,
// loopback name servers (unreachable there) are dropped, as docker does.
// On a user-defined network (embedded) the only name server is berthd's
// embedded one, which forwards to --dns or the host's. When --dns,
// --dns-search or --dns-option is given the file is written anew, as
// dockerd's: search, name servers, options, each the user's or else the
// host's; so is the file of a container on a user-defined network.
func resolvConf(hc *ctypes.HostConfig, embedded bool) string {
	raw, _ := os.ReadFile("/etc/resolv.conf")
	var kept, servers []string
	var search, options string
	for _, line := range strings.Split(string(raw), "\n") {
		fields := strings.Fields(line)
		switch {
		case len(fields) == 0:
			continue
		case fields[0] == "nameserver" && len(fields) >= 2:
			if hc.NetworkMode != "host" && (strings.HasPrefix(fields[1], "127.") || fields[1] == "::1") {
				continue
			}
			servers = append(servers, fields[1])
			if embedded || len(hc.DNS) > 0 {
				continue
			}
		case fields[0] == "search" || fields[0] == "domain":
			search = strings.Join(fields[1:], " ")
		case fields[0] == "options":
			options = strings.Join(fields[1:], " ")
		}
		kept = append(kept, line)
	}
	switch {
	case embedded:
		servers = []string{berthnet.DNSAddr}
	case len(hc.DNS) > 0:
		servers = servers[:0]
		for _, d := range hc.DNS {
			servers = append(servers, d.String())
		}
	}
	if !embedded && len(hc.DNS) == 0 && len(hc.DNSSearch) == 0 && len(hc.DNSOptions) == 0 {
		return strings.Join(kept, "\n") + "\n"
	}
	if len(hc.DNSSearch) > 0 {
		search = strings.Join(hc.DNSSearch, " ")
		if search == "." { // "." clears the search list
			search = ""
		}
	}
	if len(hc.DNSOptions) > 0 {
		options = strings.Join(hc.DNSOptions, " ")
	}
	if embedded && !strings.Contains(options, "ndots:") {
		// As dockerd: names without dots go to the embedded server first.
		options = strings.TrimSpace(options + " ndots:0")
	}
	var out []string
	if search != "" {
		out = append(out, "search "+search)
	}
	for _, ns := range servers {
		out = append(out, "nameserver "+ns)
	}
	if options != "" {
		out = append(out, "options "+options)
	}
	return strings.Join(out, "\n") + "\n"
}

// hostGateway is the host's address as a container reaches it, for
// --add-host NAME:host-gateway: the default bridge's gateway, as dockerd
// has it, or else the gateway of the container's first network.
func (e *Engine) hostGateway(sb *berthnet.Sandbox) (string, error) {
	if n, err := e.o.Network.Get(berthnet.DefaultName); err == nil && n.Gateway.IsValid() {
		return n.Gateway.String(), nil
	}
	if sb != nil && len(sb.Endpoints) > 0 {
		if n, err := e.o.Network.Get(sb.Endpoints[0].Network); err == nil && n.Gateway.IsValid() {
			return n.Gateway.String(), nil
		}
	}
	return "", errdefs.New(errdefs.ErrInvalid, "--add-host host-gateway: no bridge network gives this container a host address")
}

// processEnv is dockerd's environment for a container: PATH, HOSTNAME and
// (with a terminal) TERM, each replaced by the config's own value.
func processEnv(cfg *ctypes.Config) []string {
	env := []string{image.DefaultPath, "HOSTNAME=" + cfg.Hostname}
	if cfg.Tty {
		env = append(env, "TERM=xterm")
	}
	for _, kv := range cfg.Env {
		k, _, _ := strings.Cut(kv, "=")
		if i := slices.IndexFunc(env, func(e string) bool { return strings.HasPrefix(e, k+"=") }); i >= 0 {
			env[i] = kv
		} else {
			env = append(env, kv)
		}
	}
	return env
}

// specInput is what a container's OCI config is built from: its record
// and what the engine prepared for this run.
type specInput struct {
	rec  *Record
	root string // the mounted root filesystem
	etc  files
	sb   *berthnet.Sandbox
	// initPath is the init binary bound in for --init ("" unless asked).
	initPath string
	// netns is the network namespace path to join for
	// --network container:NAME or ns:PATH ("" otherwise).
	netns string
	// ipcns and pidns: the namespaces to join for --ipc and --pid
	// container:NAME.
	ipcns, pidns string
	cgroupParent string
	// volumes are the container's volume mounts, ready (made, copied up).
	volumes []specs.Mount
}

// specOpt sets one part of the config. The options run in the order of
// specOpts, on Berth's default spec; they read nothing but their input
// (withUser reads the image's passwd and group files).
type specOpt func(in *specInput, s *specs.Spec) error

var specOpts = []specOpt{withProcess, withUser, withSecurity, withCgroup, withNamespaces, withMounts, withDevices}

// buildSpec turns a record into the OCI config of its next run. rootPath
// is the mounted root filesystem. What touches the file system or other
// containers happens here, before the options: the init binary, a missing
// bind source made (as docker makes it), volumes made ready.
func (e *Engine) buildSpec(r *Record, rootPath string, etc files, sb *berthnet.Sandbox) (*specs.Spec, error) {
	in := &specInput{rec: r, root: rootPath, etc: etc, sb: sb, cgroupParent: e.o.CgroupParent}
	hc := r.HostConfig
	if hc.Init != nil && *hc.Init {
		init, err := e.initBinary()
		if err != nil {
			return nil, err
		}
		in.initPath = init
	}
	if hc.CgroupParent != "" {
		in.cgroupParent = hc.CgroupParent
	}
	for _, j := range []struct {
		mode     string
		path     *string
		ns, what string
	}{{string(hc.NetworkMode), &in.netns, "net", "network"}, {string(hc.IpcMode), &in.ipcns, "ipc", "IPC"}, {string(hc.PidMode), &in.pidns, "pid", "PID"}} {
		if other, ok := strings.CutPrefix(j.mode, "container:"); ok {
			pid, err := e.runningPid(other)
			if errdefs.Conflict(err) {
				return nil, err // not running, in dockerd's words
			}
			if err != nil {
				return nil, fmt.Errorf("joining the %s namespace of container %s: %w", j.what, other, err)
			}
			*j.path = fmt.Sprintf("/proc/%d/ns/%s", pid, j.ns)
		}
	}
	if path, ok := strings.CutPrefix(string(hc.NetworkMode), nsModePrefix); ok {
		in.netns = path
	}
	if err := makeBindSources(hc.Binds); err != nil {
		return nil, err
	}
	vms, err := e.volumeMounts(r, rootPath)
	if err != nil {
		return nil, err
	}
	in.volumes = vms
	s := container.DefaultSpec(false)
	for _, o := range specOpts {
		if err := o(in, s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// makeBindSources makes a missing -v source as a directory, as docker does.
func makeBindSources(binds []string) error {
	for _, raw := range binds {
		b, err := parseBind(raw)
		if err != nil {
			return err
		}
		if b.volume {
			continue
		}
		if _, err := os.Stat(b.src); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(b.src, 0o755); err != nil {
				return fmt.Errorf("bind source %s: %w", b.src, err)
			}
		}
	}
	return nil
}

// withProcess: the root, names, command (behind the init with --init),
// environment, working directory and limits.
func withProcess(in *specInput, s *specs.Spec) error {
	r, cfg, hc := in.rec, in.rec.Config, in.rec.HostConfig
	s.Root = &specs.Root{Path: in.root, Readonly: hc.ReadonlyRootfs}
	s.Hostname = cfg.Hostname
	s.Domainname = cfg.Domainname
	p := s.Process
	p.Terminal = cfg.Tty
	p.Args = append([]string{r.Path}, r.Args...)
	if in.initPath != "" {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: InitPath, Type: "bind", Source: in.initPath, Options: []string{"bind", "ro", "nosuid", "nodev"}})
		p.Args = append([]string{InitPath, "--"}, p.Args...)
	}
	p.Env = processEnv(cfg)
	p.Cwd = cfg.WorkingDir
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	p.Rlimits = nil
	for _, u := range hc.Ulimits {
		p.Rlimits = append(p.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(u.Name), Soft: uint64(u.Soft), Hard: uint64(u.Hard)})
	}
	if hc.OomScoreAdj != 0 {
		adj := hc.OomScoreAdj
		p.OOMScoreAdj = &adj
	}
	s.Linux.Sysctl = hc.Sysctls
	s.Annotations = hc.Annotations
	return nil
}

// withUser: the user and groups, from the image's passwd and group files,
// and the umask.
func withUser(in *specInput, s *specs.Spec) error {
	cfg, hc := in.rec.Config, in.rec.HostConfig
	user, err := resolveUser(in.root, cfg.User, hc.GroupAdd)
	if err != nil {
		return err
	}
	s.Process.User = user
	if hc.Umask != nil {
		m := *hc.Umask
		s.Process.User.Umask = &m
	}
	return nil
}

// withSecurity: capabilities, no_new_privs, the seccomp profile for the
// capabilities, masked and read-only paths, and what --privileged and
// --security-opt change of them.
func withSecurity(in *specInput, s *specs.Spec) error {
	hc := in.rec.HostConfig
	caps, err := capSet(hc)
	if err != nil {
		return err
	}
	p := s.Process
	p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	sec, err := parseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return err
	}
	// As dockerd: no_new_privs only when asked for.
	p.NoNewPrivileges = sec.noNewPrivs
	if s.Linux.Seccomp = sec.seccomp; s.Linux.Seccomp == nil {
		s.Linux.Seccomp = seccomp.DefaultProfile(caps)
	}
	if sec.unconfinedSeccomp {
		s.Linux.Seccomp = nil
	}
	if sec.unconfinedPaths {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	}
	if hc.Privileged {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		s.Linux.Seccomp = nil
	}
	if hc.MaskedPaths != nil {
		s.Linux.MaskedPaths = hc.MaskedPaths
	}
	if hc.ReadonlyPaths != nil {
		s.Linux.ReadonlyPaths = hc.ReadonlyPaths
	}
	return nil
}

// withCgroup: the container's cgroup, below the daemon's parent.
func withCgroup(in *specInput, s *specs.Spec) error {
	parent := in.cgroupParent
	if parent == "" {
		parent = "/berth"
	}
	s.Linux.CgroupsPath = filepath.Join(parent, in.rec.ID)
	return nil
}

// withNamespaces: docker's defaults and its host/container modes; a
// network sandbox's namespace is joined.
func withNamespaces(in *specInput, s *specs.Spec) error {
	hc := in.rec.HostConfig
	drop := map[specs.LinuxNamespaceType]bool{}
	join := map[specs.LinuxNamespaceType]string{}
	if hc.NetworkMode == "host" {
		drop[specs.NetworkNamespace] = true
	}
	if in.netns != "" {
		join[specs.NetworkNamespace] = in.netns
	}
	if in.sb != nil {
		join[specs.NetworkNamespace] = in.sb.Netns
	}
	if in.ipcns != "" {
		join[specs.IPCNamespace] = in.ipcns
	}
	if in.pidns != "" {
		join[specs.PIDNamespace] = in.pidns
	}
	if hc.IpcMode == "host" {
		drop[specs.IPCNamespace] = true
	}
	if hc.PidMode == "host" {
		drop[specs.PIDNamespace] = true
	}
	if hc.UTSMode == "host" {
		drop[specs.UTSNamespace] = true
		s.Hostname = ""
	}
	if hc.CgroupnsMode == "host" {
		drop[specs.CgroupNamespace] = true
	}
	var ns []specs.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		if drop[n.Type] {
			continue
		}
		n.Path = join[n.Type]
		ns = append(ns, n)
	}
	if m := in.rec.IDMap; m != nil {
		ns = append(ns, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings, s.Linux.GIDMappings = m.Spec()
	}
	s.Linux.Namespaces = ns
	return nil
}

// withMounts: the defaults (a /dev/shm of ShmSize), the /etc files, then
// the user's binds, tmpfs and volumes, shallower destinations first.
func withMounts(in *specInput, s *specs.Spec) error {
	hc, etc := in.rec.HostConfig, in.etc
	for i, m := range s.Mounts {
		if m.Destination == "/dev/shm" && hc.ShmSize > 0 {
			s.Mounts[i].Options = append(slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return strings.HasPrefix(o, "size=") }), "size="+strconv.FormatInt(hc.ShmSize, 10))
		}
		if m.Destination == "/sys/fs/cgroup" && hc.Privileged {
			s.Mounts[i].Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "ro" })
		}
	}
	etcOpts := []string{"rbind", "rprivate"}
	if hc.ReadonlyRootfs {
		etcOpts = append(etcOpts, "ro")
	}
	ums := []specs.Mount{
		{Destination: "/etc/resolv.conf", Type: "bind", Source: etc.resolv, Options: etcOpts},
		{Destination: "/etc/hostname", Type: "bind", Source: etc.hostname, Options: etcOpts},
		{Destination: "/etc/hosts", Type: "bind", Source: etc.hosts, Options: etcOpts},
	}
	for _, raw := range hc.Binds {
		b, err := parseBind(raw)
		if err != nil {
			return err
		}
		if b.volume {
			continue // in r.Volumes
		}
		opts := []string{"rbind", "rprivate"}
		if b.ro {
			opts = append(opts, "ro")
		}
		if b.idmap {
			ums = append(ums, idmappedBind(b.dst, b.src, opts, *in.rec.IDMap))
			continue
		}
		ums = append(ums, specs.Mount{Destination: b.dst, Type: "bind", Source: b.src, Options: opts})
	}
	for _, m := range hc.Mounts {
		switch m.Type {
		case mount.TypeBind:
			prop := "rprivate"
			if m.BindOptions != nil && m.BindOptions.Propagation != "" {
				prop = string(m.BindOptions.Propagation)
			}
			// As dockerd: a shared bind needs the root shared too (mounts
			// made in the container reach the host), a slave one at least
			// slave (the host's reach it).
			switch {
			case prop == "shared" || prop == "rshared":
				s.Linux.RootfsPropagation = "rshared"
			case (prop == "slave" || prop == "rslave") && s.Linux.RootfsPropagation != "rshared":
				s.Linux.RootfsPropagation = "rslave"
			}
			opts := []string{"rbind", prop}
			if m.ReadOnly {
				opts = append(opts, "ro")
			}
			ums = append(ums, specs.Mount{Destination: m.Target, Type: "bind", Source: m.Source, Options: opts})
		case mount.TypeVolume:
			// in r.Volumes
		case mount.TypeTmpfs:
			var data []string
			if m.TmpfsOptions != nil {
				if m.TmpfsOptions.SizeBytes > 0 {
					data = append(data, "size="+strconv.FormatInt(m.TmpfsOptions.SizeBytes, 10))
				}
				if m.TmpfsOptions.Mode != 0 {
					data = append(data, fmt.Sprintf("mode=%o", m.TmpfsOptions.Mode))
				}
			}
			if m.ReadOnly {
				data = append(data, "ro")
			}
			ums = append(ums, specs.Mount{Destination: m.Target, Type: "tmpfs", Source: "tmpfs", Options: tmpfsOptions(data)})
		}
	}
	for _, dst := range slices.Sorted(mapKeys(hc.Tmpfs)) {
		var data []string
		if o := hc.Tmpfs[dst]; o != "" {
			data = strings.Split(o, ",")
		}
		ums = append(ums, specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: tmpfsOptions(data)})
	}
	ums = append(ums, in.volumes...)
	// As dockerd: shallower destinations first, so that a mount inside
	// another (a read-only bind over part of a volume) is not hidden by it.
	slices.SortStableFunc(ums, func(a, b specs.Mount) int {
		return mountDepth(a.Destination) - mountDepth(b.Destination)
	})
	s.Mounts = append(s.Mounts, ums...)
	return nil
}

// withDevices: the limits, and each --device as a node the device cgroup
// allows.
func withDevices(in *specInput, s *specs.Spec) error {
	hc := in.rec.HostConfig
	devs, err := devices(hc)
	if err != nil {
		return err
	}
	s.Linux.Devices = append(s.Linux.Devices, devs...)
	res, err := resources(hc)
	if err != nil {
		return err
	}
	s.Linux.Resources = res
	for _, d := range devs {
		major, minor := d.Major, d.Minor
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: &major, Minor: &minor, Access: devicePerms(hc, d.Path)})
	}
	return nil
}

func mountDepth(dst string) int { return strings.Count(filepath.Clean(dst), "/") }

// tmpfsOptions are dockerd's tmpfs options: noexec, nosuid, nodev, each
// replaced by the user's opposite (exec, suid, dev), and the user's other
// options, a later key=value replacing an earlier one.
func tmpfsOptions(user []string) []string {
	opts := []string{"noexec", "nosuid", "nodev"}
	opposite := map[string]string{"exec": "noexec", "suid": "nosuid", "dev": "nodev", "rw": "ro", "ro": "rw",
		"noexec": "exec", "nosuid": "suid", "nodev": "dev"}
	for _, o := range user {
		if o == "" {
			continue
		}
		key, _, _ := strings.Cut(o, "=")
		opts = slices.DeleteFunc(opts, func(x string) bool {
			k, _, _ := strings.Cut(x, "=")
			return x == o || x == opposite[o] || strings.Contains(o, "=") && k == key
		})
		opts = append(opts, o)
	}
	return opts
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// capSet applies CapAdd/CapDrop ("NET_ADMIN", "CAP_NET_ADMIN", "ALL") to
// docker's defaults; Privileged gives every capability.
func capSet(hc *ctypes.HostConfig) ([]string, error) {
	norm := func(c string) string {
		c = strings.ToUpper(c)
		if c != "ALL" && !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		return c
	}
	known := capabilities.Names()
	if hc.Privileged {
		// Every capability berthd can give (containerd's "all current
		// capabilities"): one outside its bounding set would fail the
		// container's start.
		return capabilities.Bounding(), nil
	}
	caps := slices.Clone(defaultCaps)
	for _, c := range hc.CapDrop {
		c = norm(c)
		if c == "ALL" {
			caps = nil
			continue
		}
		if !slices.Contains(known, c) {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown capability to drop: %q", c))
		}
		caps = slices.DeleteFunc(caps, func(x string) bool { return x == c })
	}
	for _, c := range hc.CapAdd {
		c = norm(c)
		if c == "ALL" {
			caps = capabilities.Bounding()
			continue
		}
		if !slices.Contains(known, c) {
			return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown capability to add: %q", c))
		}
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return caps, nil
}

// resources converts docker's limits to the runtime spec's.
func resources(hc *ctypes.HostConfig) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	if hc.Memory > 0 || hc.MemoryReservation > 0 || hc.MemorySwap != 0 || hc.MemorySwappiness != nil || hc.OomKillDisable != nil {
		m := &specs.LinuxMemory{}
		if hc.Memory > 0 {
			m.Limit = &hc.Memory
		}
		if hc.MemoryReservation > 0 {
			m.Reservation = &hc.MemoryReservation
		}
		if hc.MemorySwap != 0 {
			m.Swap = &hc.MemorySwap
		}
		if hc.MemorySwappiness != nil && *hc.MemorySwappiness >= 0 {
			v := uint64(*hc.MemorySwappiness)
			m.Swappiness = &v
		}
		m.DisableOOMKiller = hc.OomKillDisable
		r.Memory = m
	}
	if hc.NanoCPUs > 0 || hc.CPUShares > 0 || hc.CPUQuota > 0 || hc.CPUPeriod > 0 || hc.CpusetCpus != "" || hc.CpusetMems != "" {
		c := &specs.LinuxCPU{Cpus: hc.CpusetCpus, Mems: hc.CpusetMems}
		if hc.CPUShares > 0 {
			v := uint64(hc.CPUShares)
			c.Shares = &v
		}
		if hc.NanoCPUs > 0 {
			period := uint64(100000)
			quota := hc.NanoCPUs * int64(period) / 1e9
			c.Period, c.Quota = &period, &quota
		}
		if hc.CPUQuota > 0 {
			c.Quota = &hc.CPUQuota
		}
		if hc.CPUPeriod > 0 {
			v := uint64(hc.CPUPeriod)
			c.Period = &v
		}
		r.CPU = c
	}
	if hc.PidsLimit != nil && *hc.PidsLimit > 0 {
		r.Pids = &specs.LinuxPids{Limit: *hc.PidsLimit}
	}
	if hc.BlkioWeight > 0 {
		w := hc.BlkioWeight
		r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	return r, nil
}

// resolveUser turns docker's "user[:group]" (names or numbers) into ids,
// reading /etc/passwd and /etc/group inside the root filesystem (resolved
// there: a symlink cannot point the lookup at the host's files), and adds
// the user's supplementary groups and groupAdd.
func resolveUser(root, spec string, groupAdd []string) (specs.User, error) {
	u := specs.User{}
	name, group, hasGroup := strings.Cut(spec, ":")
	passwd := readDB(root, "/etc/passwd")
	groups := readDB(root, "/etc/group")
	userName := ""
	if name != "" {
		if n, err := strconv.ParseUint(name, 10, 32); err == nil {
			u.UID = uint32(n)
			for _, f := range passwd {
				if len(f) >= 4 && f[2] == name {
					userName = f[0]
					g, _ := strconv.ParseUint(f[3], 10, 32)
					u.GID = uint32(g)
					break
				}
			}
		} else {
			found := false
			for _, f := range passwd {
				if len(f) >= 4 && f[0] == name {
					uid, _ := strconv.ParseUint(f[2], 10, 32)
					gid, _ := strconv.ParseUint(f[3], 10, 32)
					u.UID, u.GID, userName, found = uint32(uid), uint32(gid), name, true
					break
				}
			}
			if !found {
				return u, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unable to find user %s: no matching entries in passwd file", name))
			}
		}
	} else {
		userName = "root"
	}
	lookupGroup := func(g string) (uint32, error) {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			return uint32(n), nil
		}
		for _, f := range groups {
			if len(f) >= 3 && f[0] == g {
				n, _ := strconv.ParseUint(f[2], 10, 32)
				return uint32(n), nil
			}
		}
		return 0, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unable to find group %s: no matching entries in group file", g))
	}
	if hasGroup {
		gid, err := lookupGroup(group)
		if err != nil {
			return u, err
		}
		u.GID = gid
	}
	if userName != "" {
		for _, f := range groups {
			if len(f) >= 4 && slices.Contains(strings.Split(f[3], ","), userName) {
				if n, err := strconv.ParseUint(f[2], 10, 32); err == nil && uint32(n) != u.GID {
					u.AdditionalGids = append(u.AdditionalGids, uint32(n))
				}
			}
		}
	}
	if len(u.AdditionalGids) == 0 {
		// As dockerd (runc's user lookup): a user in no group of its own
		// keeps its primary group as the supplementary list.
		u.AdditionalGids = []uint32{u.GID}
	}
	for _, g := range groupAdd {
		gid, err := lookupGroup(g)
		if err != nil {
			return u, err
		}
		u.AdditionalGids = append(u.AdditionalGids, gid)
	}
	return u, nil
}

// openInRoot resolves path inside the directory root, as the kernel would
// if root were "/" (no symlink leads out), and returns an O_PATH
// descriptor.
func openInRoot(root, path string) (int, error) {
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(rootfd)
	return rootfs.OpenInRoot(rootfd, path)
}

// readDB reads a colon-separated database inside root; a missing file is
// empty.
func readDB(root, path string) [][]string {
	fd, err := openInRoot(root, path)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	f, err := os.Open(rootfs.ProcFd(fd))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
}

// deviceNode reads a --device host node: its type and numbers.
func deviceNode(d ctypes.DeviceMapping) (specs.LinuxDevice, error) {
	fail := func(err error) (specs.LinuxDevice, error) {
		return specs.LinuxDevice{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("error gathering device information while adding custom device %q: %v", d.PathOnHost, err))
	}
	var st unix.Stat_t
	if err := unix.Stat(d.PathOnHost, &st); err != nil {
		return fail(err)
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return fail(errors.New("not a device node"))
	}
	for _, c := range d.CgroupPermissions {
		if !strings.ContainsRune("rwm", c) {
			return specs.LinuxDevice{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid device mode: %s", d.CgroupPermissions))
		}
	}
	dst := d.PathInContainer
	if dst == "" {
		dst = d.PathOnHost
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{Path: dst, Type: typ, Major: int64(unix.Major(uint64(st.Rdev))), Minor: int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode, UID: &uid, GID: &gid}, nil
}

// devices are the --device nodes to create in the container.
func devices(hc *ctypes.HostConfig) ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	for _, d := range hc.Devices {
		n, err := deviceNode(d)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// devicePerms is the cgroup access --device gave the node at path in the
// container ("rwm" when not given).
func devicePerms(hc *ctypes.HostConfig, path string) string {
	for _, d := range hc.Devices {
		if (d.PathInContainer == path || d.PathInContainer == "" && d.PathOnHost == path) && d.CgroupPermissions != "" {
			return d.CgroupPermissions
		}
	}
	return "rwm"
}
