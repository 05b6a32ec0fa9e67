// The Go runtime's container-aware GOMAXPROCS reads cgroup files at every
// start and keeps them open: cost on the create path, and host descriptors
// inside a container's init. The runtime needs neither.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command berth-runtime is an OCI runtime with runc's command-line dialect.
// Each command lives in its own file and only parses flags; the work is in
// package container.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"time"

	"github.com/berth-project/berth/cgroups"
	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/container/initproc"
	_ "github.com/berth-project/berth/container/nsenter"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

var global struct {
	root          string
	log           string
	logFormat     string
	debug         bool
	systemdCgroup bool
	rootless      string
	criu          string
}

// exitError carries a process exit status out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	if initproc.IsInit() {
		initproc.Main()
	}
	// One P (procs.c set it already unless the caller chose a number): the
	// command's work is sequential (the seccomp compile that overlaps the
	// init's rootfs work takes ~0.3 ms), and each P keeps its own partly
	// used heap spans.
	forgetProcs()
	goruntime.GOMAXPROCS(1)
	a := &app{
		name:    "berth-runtime",
		short:   "An OCI container runtime (runc-compatible command line)",
		version: version,
		before: func() error {
			switch global.logFormat {
			case "text", "json":
			default:
				return fmt.Errorf("--log-format %q: must be text or json", global.logFormat)
			}
			cgroups.Warnf = func(format string, args ...any) { logMsg("warning", fmt.Sprintf(format, args...)) }
			container.Debugf = func(format string, args ...any) { logMsg("debug", fmt.Sprintf(format, args...)) }
			return nil
		},
	}
	f := &a.global
	f.StringVar(&global.root, "root", "/run/berth-runtime", "root directory for container state")
	f.StringVar(&global.log, "log", "", "append the runtime's log to this file (default: stderr)")
	f.StringVar(&global.logFormat, "log-format", "text", "log format: text or json")
	f.BoolVar(&global.debug, "debug", false, "log debug messages")
	f.BoolVar(&global.systemdCgroup, "systemd-cgroup", false, "linux.cgroupsPath is systemd's slice:prefix:name, and the cgroup a transient scope unit systemd makes (over D-Bus)")
	f.StringVar(&global.rootless, "rootless", "auto", "accepted for compatibility; rootless mode is detected")
	f.StringVar(&global.criu, "criu", "criu", "accepted for compatibility; checkpointing is not supported")
	a.commands = []*command{createCmd(), startCmd(), runCmd(), stateCmd(), killCmd(), deleteCmd(),
		listCmd(), psCmd(), execCmd(), specCmd(), featuresCmd(),
		pauseCmd(), resumeCmd(), updateCmd(), eventsCmd()}

	err := a.execute(os.Args[1:])
	if errors.Is(err, errHelp) {
		return
	}
	var ee exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	if err != nil {
		logMsg("error", err.Error())
		os.Exit(1)
	}
}

// logMsg writes one log entry where runc writes it, in runc's (logrus's)
// formats, which engines parse: to --log, or to stderr without it, as
// `time="…" level=… msg="…"` or as a JSON object. An error logged to a
// file is also printed plainly on stderr, as runc prints it.
func logMsg(level, msg string) {
	if level == "debug" && !global.debug {
		return
	}
	var w io.Writer = os.Stderr
	if global.log != "" {
		if f, err := os.OpenFile(global.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			defer f.Close()
			w = f
			if level == "error" {
				fmt.Fprintln(os.Stderr, msg)
			}
		}
	}
	now := time.Now().Format(time.RFC3339)
	if global.logFormat == "json" {
		b, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": now})
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	fmt.Fprintf(w, "time=%q level=%s msg=%q\n", now, level, msg)
}

func stdio() [3]*os.File { return [3]*os.File{os.Stdin, os.Stdout, os.Stderr} }

// writePidFile writes pid atomically, as containerd expects.
func writePidFile(path string, pid int) error {
	if path == "" {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(fmt.Sprint(pid)), 0o644); err != nil {
		return fmt.Errorf("--pid-file: %w", err)
	}
	return os.Rename(tmp, path)
}
