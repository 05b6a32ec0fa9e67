// Command berthd is Berth's daemon: it serves the Docker Engine API (on a
// unix socket by default) over the image store and, as they land, the
// container, network and volume parts. Its flags are dockerd's where
// dockerd has them, so that several daemons can run side by side.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/berth-project/berth/apiserver"
	"github.com/berth-project/berth/cri"
	"github.com/berth-project/berth/engine"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/network"
	"github.com/berth-project/berth/volume"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// config is berthd's configuration: flags, over daemon.json.
type config struct {
	Hosts              []string `json:"hosts"`
	DataRoot           string   `json:"data-root"`
	ExecRoot           string   `json:"exec-root"`
	Pidfile            string   `json:"pidfile"`
	LogLevel           string   `json:"log-level"`
	InsecureRegistries []string `json:"insecure-registries"`
	CgroupParent       string   `json:"cgroup-parent"`
	MTU                int      `json:"mtu"`
	Bridge             string   `json:"bridge"`
	BIP                string   `json:"bip"`
	UsernsRemap        string   `json:"userns-remap"`
	UsernsAuto         bool     `json:"userns-auto"`
	SubuidFile         string   `json:"subuid-file"`
	SubgidFile         string   `json:"subgid-file"`
	// RootlessHostLoopback lets a rootless daemon and its containers
	// reach the host's loopback at 10.0.2.2 (slirp4netns).
	RootlessHostLoopback bool     `json:"rootless-host-loopback"`
	UsernsLayers         string   `json:"userns-layers"`
	StorageDriver        string   `json:"storage-driver"`
	CRISocket            string   `json:"cri-socket"`
	CNIConfDir           string   `json:"cni-conf-dir"`
	CNIBinDirs           []string `json:"cni-bin-dirs"`
	CRIStreamAddr        string   `json:"cri-stream-address"`
	RegistryMirrors      []string `json:"registry-mirrors"`
	tlsOptions
	// rootless: this daemon runs in the user namespace its rootless
	// parent made (rootless.go), which opens host ports for it through
	// the socket rootlessPorts.
	rootless      bool
	rootlessPorts int
}

func main() {
	var cfg config
	var configFile string
	cmd := &cobra.Command{
		Use:           "berthd",
		Short:         "Berth's daemon: the Docker Engine API over Berth's engine",
		Version:       version,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := mergeFile(&cfg, configFile, cmd); err != nil {
				return err
			}
			if fd := os.Getenv(rootlessChildEnv); fd != "" {
				if err := rootlessChildSetup(fd); err != nil {
					return err
				}
				cfg.rootless, cfg.rootlessPorts = true, 4
				return run(cfg)
			}
			if os.Geteuid() != 0 {
				extra, err := rootlessDefaults(cmd, &cfg)
				if err != nil {
					return err
				}
				return runRootlessParent(cfg, extra)
			}
			return run(cfg)
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&cfg.Hosts, "host", "H", []string{"unix:///run/berth/berth.sock"}, "socket(s) to listen on: unix:///path or tcp://host:port")
	f.StringVar(&cfg.DataRoot, "data-root", defaultDataRoot, "root of persistent state")
	f.StringVar(&cfg.ExecRoot, "exec-root", "/run/berth", "root of runtime state")
	f.StringVarP(&cfg.Pidfile, "pidfile", "p", "/run/berth/berthd.pid", "file to write the daemon's PID to")
	f.StringVarP(&cfg.LogLevel, "log-level", "l", "info", "debug, info, warn or error")
	f.StringSliceVar(&cfg.InsecureRegistries, "insecure-registry", nil, "registry host:port to speak plain HTTP to")
	f.StringVar(&cfg.CgroupParent, "cgroup-parent", "/berth", "cgroup under which containers' cgroups are made")
	f.StringVarP(&cfg.Bridge, "bridge", "b", "", "the default network's Linux bridge (default berth0); each daemon on a host needs its own")
	f.StringVar(&cfg.BIP, "bip", "", "the default bridge's address and prefix, such as 172.30.0.1/24 (default: a free pool)")
	f.IntVar(&cfg.MTU, "mtu", 0, "MTU of the default bridge network (0: 65535 on the host, 1500 on containers' default route)")
	f.StringVar(&cfg.UsernsRemap, "userns-remap", "", "give every container a user namespace whose root is a user of USER[:GROUP]'s subordinate ids (\"default\": the berth user, made if missing)")
	f.BoolVar(&cfg.UsernsAuto, "userns-auto", false, "give every container a user namespace of its own, with a range of 65536 ids no other container has (--userns=host opts out)")
	f.StringVar(&cfg.SubuidFile, "subuid-file", "/etc/subuid", "subordinate uid ranges, as subuid(5)")
	f.StringVar(&cfg.SubgidFile, "subgid-file", "/etc/subgid", "subordinate gid ranges, as subgid(5)")
	f.StringSliceVar(&cfg.RegistryMirrors, "registry-mirror", nil, "pull through a mirror: URL for Docker Hub's images, HOST=URL for another registry's (registry.k8s.io=http://mirror:5000)")
	f.StringVar(&cfg.CRISocket, "cri-socket", "", "also serve the Kubernetes CRI (pods, containers, images) on this unix socket")
	f.StringVar(&cfg.CNIConfDir, "cni-conf-dir", "/etc/cni/net.d", "the CNI network configuration of CRI pods")
	f.StringSliceVar(&cfg.CNIBinDirs, "cni-bin-dir", nil, "a directory of CNI plugins (repeatable; default /opt/cni/bin and /usr/lib/cni)")
	f.StringVar(&cfg.CRIStreamAddr, "cri-stream-address", "127.0.0.1:0", "where the CRI streaming server (exec, attach, port-forward) listens")
	f.StringVarP(&cfg.StorageDriver, "storage-driver", "s", "", "how containers' root filesystems are mounted: overlay2 (the kernel's overlayfs) or fuse-overlayfs (default: overlay2 unless the kernel refuses it here)")
	f.StringVar(&cfg.UsernsLayers, "userns-layers", "auto", "how image layers are mounted for user namespaces: idmap (never copied), copy (chown-copied once per range, cached), auto (idmap where the kernel allows it)")
	f.BoolVar(&cfg.RootlessHostLoopback, "rootless-host-loopback", false, "rootless: let the daemon and its containers reach the host's loopback addresses at 10.0.2.2 (off: slirp4netns refuses them)")
	var useTLS bool
	f.BoolVar(&useTLS, "tls", false, "serve TCP sockets over TLS (implied by --tlsverify)")
	f.BoolVar(&cfg.TLSVerify, "tlsverify", false, "serve TCP over TLS and require client certificates signed by --tlscacert")
	f.StringVar(&cfg.CACert, "tlscacert", "", "CA certificate clients must be signed by (default ~/.docker/ca.pem)")
	f.StringVar(&cfg.Cert, "tlscert", "", "the server's TLS certificate (default ~/.docker/cert.pem)")
	f.StringVar(&cfg.Key, "tlskey", "", "the server's TLS key (default ~/.docker/key.pem)")
	cmd.PreRun = func(cmd *cobra.Command, args []string) {
		if cmd.Flags().Changed("tls") {
			cfg.TLS = &useTLS
		}
	}
	f.StringVar(&configFile, "config-file", "/etc/berth/daemon.json", "daemon.json with defaults for these options")
	cmd.AddCommand(verifyCmd(&cfg))
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		os.Exit(1)
	}
}

// verifyCmd checks a data root's image store offline: every blob against
// its digest, every unpacked layer, every name. berthd must not be running
// on that data root (the store is locked while it is).
func verifyCmd(cfg *config) *cobra.Command {
	c := &cobra.Command{
		Use:   "verify",
		Short: "Check every blob, layer and name of the image store, and every container record (offline)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := image.Open(image.Options{Root: cfg.DataRoot})
			if err != nil {
				return err
			}
			defer store.Close()
			errs := store.Verify()
			bad, err := engine.VerifyRecords(cfg.DataRoot)
			if err != nil {
				return err
			}
			errs = append(errs, bad...)
			for _, e := range errs {
				fmt.Fprintln(os.Stderr, e)
			}
			if len(errs) > 0 {
				return fmt.Errorf("%d problem(s) in %s", len(errs), cfg.DataRoot)
			}
			fmt.Println("consistent")
			return nil
		},
	}
	c.Flags().StringVar(&cfg.DataRoot, "data-root", "/var/lib/berth", "root of persistent state")
	return c
}

// mergeFile fills the options not given as flags from daemon.json, which
// may be absent only at its default path. Unknown keys are an error, as in
// dockerd.
func mergeFile(cfg *config, path string, cmd *cobra.Command) error {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !cmd.Flags().Changed("config-file") {
		return nil
	}
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	if strings.TrimSpace(string(raw)) == "" {
		return nil
	}
	var file config
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	set := func(flag string, apply func()) {
		if !cmd.Flags().Changed(flag) {
			apply()
		}
	}
	set("host", func() {
		if len(file.Hosts) > 0 {
			cfg.Hosts = file.Hosts
		}
	})
	set("data-root", func() {
		if file.DataRoot != "" {
			cfg.DataRoot = file.DataRoot
		}
	})
	set("exec-root", func() {
		if file.ExecRoot != "" {
			cfg.ExecRoot = file.ExecRoot
		}
	})
	set("pidfile", func() {
		if file.Pidfile != "" {
			cfg.Pidfile = file.Pidfile
		}
	})
	set("log-level", func() {
		if file.LogLevel != "" {
			cfg.LogLevel = file.LogLevel
		}
	})
	set("cgroup-parent", func() {
		if file.CgroupParent != "" {
			cfg.CgroupParent = file.CgroupParent
		}
	})
	set("bridge", func() {
		if file.Bridge != "" {
			cfg.Bridge = file.Bridge
		}
	})
	set("bip", func() {
		if file.BIP != "" {
			cfg.BIP = file.BIP
		}
	})
	set("mtu", func() {
		if file.MTU != 0 {
			cfg.MTU = file.MTU
		}
	})
	set("insecure-registry", func() { cfg.InsecureRegistries = append(cfg.InsecureRegistries, file.InsecureRegistries...) })
	set("registry-mirror", func() { cfg.RegistryMirrors = append(cfg.RegistryMirrors, file.RegistryMirrors...) })
	set("tls", func() {
		if file.TLS != nil {
			cfg.TLS = file.TLS
		}
	})
	set("tlsverify", func() { cfg.TLSVerify = cfg.TLSVerify || file.TLSVerify })
	set("tlscacert", func() {
		if file.CACert != "" {
			cfg.CACert = file.CACert
		}
	})
	set("tlscert", func() {
		if file.Cert != "" {
			cfg.Cert = file.Cert
		}
	})
	set("tlskey", func() {
		if file.Key != "" {
			cfg.Key = file.Key
		}
	})
	return nil
}

func run(cfg config) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: %w", cfg.LogLevel, err)
	}
	// Checked here as well as by SetDefaultMTU, so that a bad value leaves
	// nothing behind: no pidfile, data root or exec root.
	if cfg.MTU != 0 {
		if err := network.CheckMTU(cfg.MTU); err != nil {
			return fmt.Errorf("--mtu: %w", err)
		}
	}
	uns, err := usernsOptions(cfg)
	if err != nil {
		return err
	}
	tlsConfig, err := cfg.serverConfig()
	if err != nil {
		return err
	}
	netOpts, err := networkOptions(cfg)
	if err != nil {
		return err
	}
	if cfg.rootless {
		fwd, err := newPortProxy(cfg.rootlessPorts)
		if err != nil {
			return err
		}
		netOpts.ForwardPorts = fwd.Forward
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	warnings := tcpWarnings(cfg.Hosts, cfg.tlsOptions)
	if cfg.rootless {
		warnings = append(warnings, rootlessCgroupWarning(cfg.CgroupParent)...)
	}
	for _, w := range warnings {
		log.Warn(w)
	}
	// Whatever containers leave behind is reparented to berthd, not to the
	// host's PID 1.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("becoming a child subreaper: %w", err)
	}
	if err := os.MkdirAll(cfg.ExecRoot, 0o711); err != nil {
		return err
	}
	if err := writePidfile(cfg.Pidfile); err != nil {
		return err
	}
	defer os.Remove(cfg.Pidfile)
	mirrors := map[string]*url.URL{}
	for _, m := range cfg.RegistryMirrors {
		host, u, err := image.ParseMirror(m)
		if err != nil {
			return err
		}
		mirrors[host] = u
	}
	images, err := image.Open(image.Options{Root: cfg.DataRoot, InsecureRegistries: cfg.InsecureRegistries, StorageDriver: cfg.StorageDriver,
		Transport: image.MirrorTransport(remote.DefaultTransport, mirrors)})
	if err != nil {
		return err
	}
	defer images.Close()
	volumes, err := volume.Open(cfg.DataRoot)
	if err != nil {
		return err
	}
	nets, err := network.OpenWith(filepath.Join(cfg.DataRoot, "network"), filepath.Join(cfg.ExecRoot, "netns"), log, netOpts)
	if err != nil {
		return err
	}
	if err := nets.SetDefaultMTU(cfg.MTU); err != nil {
		return fmt.Errorf("--mtu: %w", err)
	}
	eng, err := engine.Open(engine.Options{DataRoot: cfg.DataRoot, ExecRoot: cfg.ExecRoot, Images: images, Volumes: volumes, Network: nets, Log: log, CgroupParent: cfg.CgroupParent, Userns: uns})
	if err != nil {
		return err
	}
	// Containers outlive berthd: closing the engine leaves them to the
	// monitor.
	defer eng.Close()

	api := apiserver.New(apiserver.Backend{Images: images, Engine: eng, Volumes: volumes, Networks: nets, DataRoot: cfg.DataRoot, Version: version, Warnings: warnings,
		InsecureRegistries: cfg.InsecureRegistries, RegistryMirrors: mirrors})
	var handler http.Handler = api
	if level <= slog.LevelDebug {
		handler = withPprof(api)
	}
	srv := &http.Server{Handler: logRequests(log, handler), ReadHeaderTimeout: 30 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	errc := make(chan error, len(cfg.Hosts))
	for _, h := range cfg.Hosts {
		l, err := listen(h, tlsConfig)
		if err != nil {
			return err
		}
		log.Info("API listening", "host", h)
		go func() { errc <- srv.Serve(l) }()
	}
	if cfg.CRISocket != "" {
		bins := cfg.CNIBinDirs
		if len(bins) == 0 {
			bins = []string{"/opt/cni/bin", "/usr/lib/cni"}
		}
		c := &cri.Server{Images: images, Engine: eng, BerthVersion: version, DataRoot: cfg.DataRoot,
			StateDir: filepath.Join(cfg.DataRoot, "cri"), RunDir: filepath.Join(cfg.ExecRoot, "cri"), StreamAddr: cfg.CRIStreamAddr, Log: log,
			CNI: &cri.CNI{ConfDir: cfg.CNIConfDir, BinDirs: bins, CacheDir: filepath.Join(cfg.DataRoot, "cri", "cni")}}
		log.Info("CRI listening", "socket", cfg.CRISocket)
		go func() { errc <- c.Serve(ctx, cfg.CRISocket) }()
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-errc:
		return err
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// defaultDataRoot is berthd's data root when none is given.
const defaultDataRoot = "/var/lib/berth"

// networkOptions are this daemon's network names: the default daemon
// keeps "berth" and BERTH-FORWARD; another (another data root) gets names
// of its own, from a hash of its data root, so that daemons side by side
// never rewrite each other's rules.
func networkOptions(cfg config) (network.Options, error) {
	o := network.Options{Bridge: cfg.Bridge, Owner: network.OwnerOf(cfg.DataRoot)}
	if cfg.Bridge == "none" {
		return o, fmt.Errorf("--bridge none is not supported by berthd: containers without a network take --network none")
	}
	if cfg.BIP != "" {
		p, err := netip.ParsePrefix(cfg.BIP)
		if err != nil || !p.Addr().Is4() || p.Addr() == p.Masked().Addr() {
			return o, fmt.Errorf("--bip %q: want the bridge's IPv4 address and prefix, such as 172.30.0.1/24", cfg.BIP)
		}
		o.BIP = p
	}
	if filepath.Clean(cfg.DataRoot) != defaultDataRoot {
		sum := sha256.Sum256([]byte(filepath.Clean(cfg.DataRoot)))
		h := hex.EncodeToString(sum[:4])
		o.Table, o.ForwardChain = "berth-"+h, "BERTH-FWD-"+strings.ToUpper(h)
	}
	return o, nil
}

// writePidfile refuses to start over a live daemon's pidfile.
func writePidfile(path string) error {
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid != os.Getpid() && syscall.Kill(pid, 0) == nil {
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); filepath.Base(exe) == filepath.Base(os.Args[0]) {
				return fmt.Errorf("pidfile %s names a running berthd (pid %d)", path, pid)
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

// listen opens unix:///path (replacing a stale socket; mode 0660) or
// tcp://host:port, over TLS when tlsConfig is set.
func listen(host string, tlsConfig *tls.Config) (net.Listener, error) {
	proto, addr, ok := strings.Cut(host, "://")
	if !ok {
		return nil, fmt.Errorf("--host %q: want unix:///path or tcp://host:port", host)
	}
	switch proto {
	case "unix":
		if err := os.MkdirAll(filepath.Dir(addr), 0o755); err != nil {
			return nil, err
		}
		if c, err := net.Dial("unix", addr); err == nil {
			c.Close()
			return nil, fmt.Errorf("--host %s: another daemon is listening there", host)
		}
		os.Remove(addr)
		l, err := net.Listen("unix", addr)
		if err != nil {
			return nil, err
		}
		if err := os.Chmod(addr, 0o660); err != nil {
			l.Close()
			return nil, err
		}
		return l, nil
	case "tcp":
		l, err := net.Listen("tcp", addr)
		if err != nil || tlsConfig == nil {
			return l, err
		}
		return tls.NewListener(l, tlsConfig), nil
	}
	return nil, fmt.Errorf("--host %q: unknown protocol %q", host, proto)
}

// withPprof serves Go's profiles under /debug/pprof/ beside the API, as
// dockerd does in debug mode: tests count berthd's goroutines with it.
func withPprof(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/", api)
	return mux
}

// logRequests logs each request at debug level.
func logRequests(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Debug("request", "method", r.Method, "path", r.URL.Path)
		h.ServeHTTP(w, r)
	})
}
