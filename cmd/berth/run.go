package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"

	"github.com/berth-project/berth/logfile"
	"github.com/moby/moby/api/pkg/stdcopy"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// createFlags are run's and create's container options.
type createFlags struct {
	name, workdir, user, hostname, network, restart, entrypoint  string
	bandwidth, ip, userns                                        string
	aliases, expose                                              []string
	memory, cpus, stopSignal, shmSize, logDriver                 string
	env, volumes, labels, tmpfs, capAdd, capDrop, secOpts        []string
	logOpts, publish, ulimits                                    []string
	tty, interactive, rm, readOnly, privileged, init, publishAll bool
	pidsLimit                                                    int64
	stopTimeout                                                  int
}

func (f *createFlags) register(fs *pflag.FlagSet) {
	// -h is --hostname, as in docker; help has no shorthand here.
	fs.Bool("help", false, "help for this command")
	fs.StringVar(&f.name, "name", "", "name the container")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fs.StringVarP(&f.user, "user", "u", "", "user[:group], names or ids")
	fs.StringVarP(&f.hostname, "hostname", "h", "", "container host name")
	fs.StringVar(&f.network, "network", "", "bridge (the default), a network's name, none, host, container:<name|id>")
	fs.StringVar(&f.ip, "ip", "", "IPv4 address on a user-defined network")
	fs.StringVar(&f.userns, "userns", "", "user namespace: auto (a range of ids of its own), remap (the daemon's --userns-remap), host (none); default: the daemon's")
	fs.StringArrayVar(&f.aliases, "network-alias", nil, "another name on the network")
	fs.StringArrayVar(&f.expose, "expose", nil, "expose a port or port/proto (for -P)")
	fs.StringVar(&f.bandwidth, "bandwidth", "", "limit the network: 10mbit both ways, or egress=10mbit,ingress=2mbit (label "+bandwidthLabel+")")
	fs.StringVar(&f.restart, "restart", "", "no, on-failure[:max-retries], always, unless-stopped")
	fs.StringVar(&f.entrypoint, "entrypoint", "", "replace the image's entrypoint")
	fs.StringVarP(&f.memory, "memory", "m", "", "memory limit (e.g. 64m)")
	fs.StringVar(&f.cpus, "cpus", "", "number of CPUs (e.g. 0.5)")
	fs.StringVar(&f.stopSignal, "stop-signal", "", "signal that stops the container")
	fs.StringVar(&f.shmSize, "shm-size", "", "size of /dev/shm")
	fs.StringVar(&f.logDriver, "log-driver", "", "json-file (the only one)")
	fs.StringArrayVarP(&f.env, "env", "e", nil, "set an environment variable")
	fs.StringArrayVarP(&f.volumes, "volume", "v", nil, "bind mount /host:/container[:ro]")
	fs.StringArrayVarP(&f.labels, "label", "l", nil, "set a label key=value")
	fs.StringArrayVar(&f.tmpfs, "tmpfs", nil, "mount a tmpfs: /path[:options]")
	fs.StringArrayVar(&f.capAdd, "cap-add", nil, "add a capability")
	fs.StringArrayVar(&f.capDrop, "cap-drop", nil, "drop a capability")
	fs.StringArrayVar(&f.secOpts, "security-opt", nil, "seccomp=unconfined, no-new-privileges=false")
	fs.StringArrayVar(&f.logOpts, "log-opt", nil, "json-file option: max-size=10m, max-file=3")
	fs.StringArrayVarP(&f.publish, "publish", "p", nil, "publish a port: [ip:][hostPort:]containerPort[/proto]")
	fs.StringArrayVar(&f.ulimits, "ulimit", nil, "name=soft[:hard]")
	fs.BoolVarP(&f.tty, "tty", "t", false, "allocate a terminal")
	fs.BoolVarP(&f.interactive, "interactive", "i", false, "keep standard input open")
	fs.BoolVar(&f.rm, "rm", false, "remove the container when it exits")
	fs.BoolVar(&f.readOnly, "read-only", false, "read-only root filesystem")
	fs.BoolVar(&f.privileged, "privileged", false, "every capability, no seccomp, no masked paths")
	fs.BoolVar(&f.init, "init", false, "run an init in front of the command")
	fs.BoolVarP(&f.publishAll, "publish-all", "P", false, "publish every exposed port")
	fs.Int64Var(&f.pidsLimit, "pids-limit", 0, "most processes the container may have")
	fs.IntVar(&f.stopTimeout, "stop-timeout", -1, "seconds to wait for the stop signal before SIGKILL")
}

// configs turns the flags and IMAGE [COMMAND...] into the create request.
func (f *createFlags) configs(args []string) (*ctypes.Config, *ctypes.HostConfig, error) {
	cfg := &ctypes.Config{
		Image: args[0], Tty: f.tty, OpenStdin: f.interactive, StdinOnce: f.interactive,
		AttachStdin: f.interactive, AttachStdout: true, AttachStderr: true,
		Env: f.env, WorkingDir: f.workdir, User: f.user, Hostname: f.hostname, StopSignal: f.stopSignal,
		Labels: map[string]string{},
	}
	if len(args) > 1 {
		cfg.Cmd = args[1:]
	}
	if f.entrypoint != "" {
		cfg.Entrypoint = []string{f.entrypoint}
	}
	if f.stopTimeout >= 0 {
		cfg.StopTimeout = &f.stopTimeout
	}
	for _, l := range f.labels {
		k, v, _ := strings.Cut(l, "=")
		cfg.Labels[k] = v
	}
	if f.bandwidth != "" {
		cfg.Labels[bandwidthLabel] = f.bandwidth
	}
	for _, e := range f.expose {
		p, err := network.ParsePort(e)
		if err != nil {
			return nil, nil, fmt.Errorf("--expose %s: %w", e, err)
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		cfg.ExposedPorts[p] = struct{}{}
	}
	hc := &ctypes.HostConfig{
		Binds: f.volumes, NetworkMode: ctypes.NetworkMode(f.network), AutoRemove: f.rm, ReadonlyRootfs: f.readOnly,
		Privileged: f.privileged, CapAdd: f.capAdd, CapDrop: f.capDrop, SecurityOpt: f.secOpts,
		PublishAllPorts: f.publishAll, LogConfig: ctypes.LogConfig{Type: f.logDriver, Config: map[string]string{}},
		UsernsMode: ctypes.UsernsMode(f.userns),
	}
	if f.init {
		hc.Init = &f.init
	}
	if len(f.publish) > 0 {
		hc.PortBindings = network.PortMap{}
		for _, p := range f.publish {
			port, b, err := parsePublish(p)
			if err != nil {
				return nil, nil, err
			}
			hc.PortBindings[port] = append(hc.PortBindings[port], b)
		}
	}
	for _, o := range f.logOpts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return nil, nil, fmt.Errorf("--log-opt %q: want key=value", o)
		}
		hc.LogConfig.Config[k] = v
	}
	if len(f.tmpfs) > 0 {
		hc.Tmpfs = map[string]string{}
		for _, t := range f.tmpfs {
			dst, opts, _ := strings.Cut(t, ":")
			hc.Tmpfs[dst] = opts
		}
	}
	if f.restart != "" {
		name, max, _ := strings.Cut(f.restart, ":")
		hc.RestartPolicy.Name = ctypes.RestartPolicyMode(name)
		if max != "" {
			n, err := strconv.Atoi(max)
			if err != nil {
				return nil, nil, fmt.Errorf("--restart %q: bad retry count", f.restart)
			}
			hc.RestartPolicy.MaximumRetryCount = n
		}
	}
	if f.memory != "" {
		n, err := logfile.ParseSize(f.memory)
		if err != nil {
			return nil, nil, fmt.Errorf("--memory: %w", err)
		}
		hc.Memory = n
	}
	if f.shmSize != "" {
		n, err := logfile.ParseSize(f.shmSize)
		if err != nil {
			return nil, nil, fmt.Errorf("--shm-size: %w", err)
		}
		hc.ShmSize = n
	}
	if f.cpus != "" {
		c, err := strconv.ParseFloat(f.cpus, 64)
		if err != nil || c <= 0 {
			return nil, nil, fmt.Errorf("--cpus %q: want a positive number", f.cpus)
		}
		hc.NanoCPUs = int64(c * 1e9)
	}
	if f.pidsLimit != 0 {
		hc.PidsLimit = &f.pidsLimit
	}
	for _, u := range f.ulimits {
		name, val, ok := strings.Cut(u, "=")
		soft, hard, hasHard := strings.Cut(val, ":")
		if !hasHard {
			hard = soft
		}
		s, err1 := strconv.ParseInt(soft, 10, 64)
		h, err2 := strconv.ParseInt(hard, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			return nil, nil, fmt.Errorf("--ulimit %q: want name=soft[:hard]", u)
		}
		hc.Ulimits = append(hc.Ulimits, &ctypes.Ulimit{Name: name, Soft: s, Hard: h})
	}
	if f.tty && term.IsTerminal(int(os.Stdout.Fd())) {
		if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			hc.ConsoleSize = [2]uint{uint(h), uint(w)}
		}
	}
	return cfg, hc, nil
}

// create makes the container, pulling the image first if the daemon does
// not have it (as docker run does).
func create(ctx context.Context, c *client.Client, f *createFlags, args []string) (string, error) {
	cfg, hc, err := f.configs(args)
	if err != nil {
		return "", err
	}
	opts := client.ContainerCreateOptions{Config: cfg, HostConfig: hc, Name: f.name}
	if f.ip != "" || len(f.aliases) > 0 {
		ep := &network.EndpointSettings{Aliases: f.aliases}
		if f.ip != "" {
			ip, err := netip.ParseAddr(f.ip)
			if err != nil {
				return "", fmt.Errorf("--ip %q: not an IP address", f.ip)
			}
			ep.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ip}
		}
		netName := f.network
		if netName == "" {
			netName = "bridge"
		}
		opts.NetworkingConfig = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netName: ep}}
	}
	res, err := c.ContainerCreate(ctx, opts)
	if err != nil && isNotFound(err) && strings.Contains(err.Error(), "No such image") {
		fmt.Fprintf(os.Stderr, "Unable to find image '%s' locally\n", args[0])
		if perr := pull(ctx, c, args[0], os.Stderr); perr != nil {
			return "", perr
		}
		res, err = c.ContainerCreate(ctx, opts)
	}
	if err != nil {
		return "", err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(os.Stderr, "WARNING:", w)
	}
	return res.ID, nil
}

func createCmd() *cobra.Command {
	var f createFlags
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			id, err := create(cmd.Context(), c, &f, args)
			if err != nil {
				return err
			}
			fmt.Println(id)
			return nil
		}),
	}
	cmd.Flags().SetInterspersed(false)
	f.register(cmd.Flags())
	return cmd
}

func runCmd() *cobra.Command {
	var f createFlags
	var detach bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if detach && f.rm && f.restart != "" {
				return errors.New("--rm and --restart cannot be combined")
			}
			c, err := apiClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			id, err := create(ctx, c, &f, args)
			if err != nil {
				return statusError{code: 125, err: err}
			}
			if detach {
				if _, err := c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
					return statusError{code: 125, err: err}
				}
				fmt.Println(id)
				return nil
			}
			return runAttached(ctx, c, id, &f, detachKeys)
		},
	}
	cmd.Flags().SetInterspersed(false)
	f.register(cmd.Flags())
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "run in the background and print the container's id")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "ctrl-p,ctrl-q", "keys that detach from a terminal session")
	return cmd
}

// runAttached attaches, waits and starts, in docker run's order, so that
// no output is missed, then streams until the container's output ends
// and returns its exit status.
func runAttached(ctx context.Context, c *client.Client, id string, f *createFlags, detachKeys string) error {
	att, err := c.ContainerAttach(ctx, id, client.ContainerAttachOptions{Stream: true, Stdin: f.interactive, Stdout: true, Stderr: true})
	if err != nil {
		return statusError{code: 125, err: err}
	}
	defer att.Close()
	cond := ctypes.WaitConditionNextExit
	if f.rm {
		cond = ctypes.WaitConditionRemoved
	}
	wait := c.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: cond})
	if _, err := c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return statusError{code: exitCodeOf(err), err: err}
	}
	resize := func(h, w uint) error {
		_, err := c.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w})
		return err
	}
	detached, err := stream(att.HijackedResponse, f.tty, f.interactive, detachKeys, resize)
	if err != nil {
		return err
	}
	if detached {
		return nil
	}
	select {
	case res := <-wait.Result:
		if res.Error != nil && res.Error.Message != "" {
			return statusError{code: 125, err: errors.New(res.Error.Message)}
		}
		return statusError{code: int(res.StatusCode)}
	case err := <-wait.Error:
		return statusError{code: 125, err: err}
	}
}

// exitCodeOf maps a start failure to docker run's exit codes: 127 for a
// command not found, 126 for one that cannot be run, else 125.
func exitCodeOf(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"):
		return 126
	}
	return 125
}

var errDetached = errors.New("detached")

// stream joins the terminal (or stdio) to a hijacked stream until the
// output ends. With a terminal: raw mode, the size sent now and on every
// SIGWINCH, and detachKeys ending the session (reported as detached).
func stream(h client.HijackedResponse, tty, stdin bool, detachKeys string, resize func(h, w uint) error) (bool, error) {
	inFd := int(os.Stdin.Fd())
	if tty && term.IsTerminal(inFd) {
		old, err := term.MakeRaw(inFd)
		if err == nil {
			defer term.Restore(inFd, old)
		}
		sendSize := func() {
			if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
				_ = resize(uint(h), uint(w))
			}
		}
		sendSize()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, unix.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				sendSize()
			}
		}()
	}
	inDone := make(chan error, 1)
	if stdin {
		keys, err := parseDetachKeys(detachKeys)
		if err != nil {
			return false, err
		}
		go func() {
			var src io.Reader = os.Stdin
			if tty {
				src = &detachReader{r: os.Stdin, keys: keys}
			}
			_, err := io.Copy(h.Conn, src)
			if errors.Is(err, errDetached) {
				inDone <- err
				return
			}
			_ = h.CloseWrite()
		}()
	}
	outDone := make(chan error, 1)
	go func() {
		var err error
		if tty {
			_, err = io.Copy(os.Stdout, h.Reader)
		} else {
			_, err = stdcopy.StdCopy(os.Stdout, os.Stderr, h.Reader)
		}
		outDone <- err
	}()
	select {
	case err := <-outDone:
		return false, err
	case <-inDone:
		fmt.Fprintln(os.Stderr, "\r\nread escape sequence")
		return true, nil
	}
}

// parseDetachKeys reads "ctrl-p,ctrl-q" style sequences.
func parseDetachKeys(s string) ([]byte, error) {
	var out []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6 && k[5] >= 'a' && k[5] <= 'z':
			out = append(out, k[5]-'a'+1)
		case k == "ctrl-@":
			out = append(out, 0)
		default:
			return nil, fmt.Errorf("--detach-keys: bad key %q", k)
		}
	}
	return out, nil
}

// detachReader passes input through until it sees the detach sequence.
// Bytes that began a sequence but did not complete it are passed on.
type detachReader struct {
	r     io.Reader
	keys  []byte
	match int
}

func (d *detachReader) Read(p []byte) (int, error) {
	// Room for a held-back partial sequence on top of what is read.
	buf := make([]byte, max(1, len(p)-len(d.keys)))
	n, err := d.r.Read(buf)
	out := p[:0]
	for _, b := range buf[:n] {
		if len(d.keys) > 0 && b == d.keys[d.match] {
			d.match++
			if d.match == len(d.keys) {
				return len(out), errDetached
			}
			continue
		}
		out = append(out, d.keys[:d.match]...)
		d.match = 0
		out = append(out, b)
	}
	return len(out), err
}

func isNotFound(err error) bool {
	var nf interface{ NotFound() }
	if errors.As(err, &nf) {
		return true
	}
	return strings.Contains(err.Error(), "No such")
}

// parsePublish reads -p's [ip:][hostPort:]containerPort[/proto].
func parsePublish(p string) (network.Port, network.PortBinding, error) {
	parts := strings.Split(p, ":")
	var b network.PortBinding
	switch len(parts) {
	case 1:
	case 2:
		b.HostPort = parts[0]
	case 3:
		ip, err := netip.ParseAddr(parts[0])
		if err != nil {
			return network.Port{}, b, fmt.Errorf("-p %s: invalid IP address %q", p, parts[0])
		}
		b.HostIP, b.HostPort = ip, parts[1]
	default:
		return network.Port{}, b, fmt.Errorf("-p %s: want [ip:][hostPort:]containerPort[/proto]", p)
	}
	if b.HostPort != "" {
		if _, err := strconv.ParseUint(b.HostPort, 10, 16); err != nil {
			return network.Port{}, b, fmt.Errorf("-p %s: invalid host port %q", p, b.HostPort)
		}
	}
	port, err := network.ParsePort(parts[len(parts)-1])
	if err != nil {
		return network.Port{}, b, fmt.Errorf("-p %s: %w", p, err)
	}
	return port, b, nil
}

// bandwidthLabel is berthd's bandwidth option (engine.BandwidthLabel).
const bandwidthLabel = "io.berth.bandwidth"
