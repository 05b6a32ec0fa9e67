package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/berth-project/berth/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func execCmd() *command {
	var (
		consoleSocket, cwd, user, processFile, pidFile string
		env, caps, cgroupFlags                         []string
		gids                                           []int
		tty, detach, noNewPrivs, noNewKeyring          bool
		ignorePaused                                   bool
		preserveFds                                    int
		apparmor, label                                string
	)
	cmd := &command{
		use:   "exec [flags] <container-id> <command> [args...]",
		short: "Run a new process inside a running container",
		args:  minimumNArgs(1),
		run: func(cmd *command, args []string) error {
			if apparmor != "" || label != "" {
				return fmt.Errorf("--apparmor/--process-label: no such LSM is enabled on this host")
			}
			c, err := container.Load(global.root, args[0])
			if err != nil {
				return err
			}
			var p *specs.Process
			if processFile != "" {
				b, err := os.ReadFile(processFile)
				if err != nil {
					return fmt.Errorf("--process: %w", err)
				}
				p = &specs.Process{}
				if err := json.Unmarshal(b, p); err != nil {
					return fmt.Errorf("--process %s: malformed JSON: %w", processFile, err)
				}
			} else {
				if len(args) < 2 {
					return fmt.Errorf("exec needs a command, or --process")
				}
				var base specs.Process
				if c.Spec().Process != nil {
					base = *c.Spec().Process
				}
				if base.Cwd == "" {
					base.Cwd = "/"
				}
				p = &base
				p.Args = args[1:]
				p.Terminal = tty
				p.Env = append(append([]string(nil), base.Env...), env...)
				if cwd != "" {
					p.Cwd = cwd
				}
				if user != "" {
					u, g, err := parseUser(user)
					if err != nil {
						return err
					}
					p.User.UID, p.User.GID = u, g
				}
				for _, g := range gids {
					p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
				}
				if len(caps) > 0 {
					cp := specs.LinuxCapabilities{}
					if base.Capabilities != nil {
						cp = *base.Capabilities
					}
					cp.Bounding = append(append([]string(nil), cp.Bounding...), caps...)
					cp.Effective = append(append([]string(nil), cp.Effective...), caps...)
					cp.Permitted = append(append([]string(nil), cp.Permitted...), caps...)
					p.Capabilities = &cp
				}
				if noNewPrivs {
					p.NoNewPrivileges = true
				}
				if tty {
					if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
						p.ConsoleSize = &specs.Box{Height: uint(ws.Row), Width: uint(ws.Col)}
					}
				}
			}
			subs, err := parseSubCgroups(cgroupFlags)
			if err != nil {
				return err
			}
			opts := container.ExecOpts{Process: p, ConsoleSocket: consoleSocket, PreserveFds: preserveFds, NoNewKeyring: noNewKeyring, Stdio: stdio(),
				SubCgroups: subs, IgnorePaused: ignorePaused}
			var proxy *ttyProxy
			if p.Terminal && consoleSocket == "" && !detach {
				if proxy, err = newTTYProxy(); err != nil {
					return err
				}
				defer proxy.close()
				opts.Console = proxy.remote
			}
			pid, err := c.Exec(opts)
			if err != nil {
				// As runc: a process that could not start is exit 255.
				logMsg("error", err.Error())
				return exitError{255}
			}
			if err := writePidFile(pidFile, pid); err != nil {
				return err
			}
			if detach {
				return nil
			}
			if proxy != nil {
				if err := proxy.attach(); err != nil {
					return err
				}
			}
			relay := newSignalRelay()
			defer relay.stop()
			relay.target(pid)
			code, err := container.Wait(pid)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.StringVar(&consoleSocket, "console-socket", "", "unix socket that receives the pty master")
	fl.StringVar(&cwd, "cwd", "", "working directory in the container")
	fl.StringArrayVarP(&env, "env", "e", nil, "set an environment variable (KEY=value)")
	fl.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-terminal")
	fl.StringVarP(&user, "user", "u", "", "uid[:gid] to run as")
	fl.IntSliceVarP(&gids, "additional-gids", "g", nil, "additional group ids")
	fl.StringVarP(&processFile, "process", "p", "", "path to a process.json")
	fl.BoolVarP(&detach, "detach", "d", false, "return once the process started")
	fl.StringVar(&pidFile, "pid-file", "", "write the process's pid to this file")
	fl.StringArrayVarP(&caps, "cap", "c", nil, "add a capability")
	fl.BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs for the process")
	fl.BoolVar(&noNewKeyring, "no-new-keyring", false, "keep the session keyring")
	fl.IntVar(&preserveFds, "preserve-fds", 0, "pass this many extra descriptors (from 3 up)")
	fl.StringVar(&apparmor, "apparmor", "", "AppArmor profile (not available on this host)")
	fl.StringVar(&label, "process-label", "", "SELinux label (not available on this host)")
	fl.StringArrayVarP(&cgroupFlags, "cgroup", "", nil, "run the process in an existing sub-cgroup: [controller[,controller]:]path")
	fl.BoolVar(&ignorePaused, "ignore-paused", false, "allow exec in a paused container (the process runs once it is resumed)")
	return cmd
}

// parseSubCgroups reads runc's --cgroup values, "[ctrl[,ctrl]:]path",
// into controller → path ("" for every controller).
func parseSubCgroups(flags []string) (map[string]string, error) {
	if len(flags) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, f := range flags {
		ctrls, path, ok := strings.Cut(f, ":")
		if !ok {
			ctrls, path = "", f
		}
		for _, c := range strings.Split(ctrls, ",") {
			if _, dup := out[c]; dup {
				return nil, fmt.Errorf("--cgroup %q: controller %q given twice", f, c)
			}
			out[c] = path
		}
	}
	return out, nil
}

// parseUser parses "uid" or "uid:gid" (numbers only, as runc).
func parseUser(s string) (uint32, uint32, error) {
	us, gs, hasG := strings.Cut(s, ":")
	u, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("--user %q: uid must be a number", s)
	}
	var g uint64
	if hasG {
		if g, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("--user %q: gid must be a number", s)
		}
	}
	return uint32(u), uint32(g), nil
}
