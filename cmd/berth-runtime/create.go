package main

import (
	"github.com/berth-project/berth/container"
)

type createFlags struct {
	bundle, consoleSocket, pidFile string
	noPivot, noNewKeyring          bool
	preserveFds                    int
}

func (f *createFlags) register(cmd *command) {
	fl := cmd.Flags()
	fl.StringVarP(&f.bundle, "bundle", "b", ".", "path to the bundle directory")
	fl.StringVar(&f.consoleSocket, "console-socket", "", "unix socket that receives the pty master when process.terminal is set")
	fl.StringVar(&f.pidFile, "pid-file", "", "write the container init's pid to this file")
	fl.BoolVar(&f.noPivot, "no-pivot", false, "use MS_MOVE+chroot instead of pivot_root (for roots on ramfs)")
	fl.BoolVar(&f.noNewKeyring, "no-new-keyring", false, "do not give the container its own session keyring")
	fl.IntVar(&f.preserveFds, "preserve-fds", 0, "pass this many extra descriptors (from 3 up) to the container")
}

func (f *createFlags) create(id string) (*container.Container, error) {
	c, err := container.Create(container.CreateOpts{
		Root: global.root, ID: id, Bundle: f.bundle, ConsoleSocket: f.consoleSocket,
		NoPivot: f.noPivot, NoNewKeyring: f.noNewKeyring, PreserveFds: f.preserveFds, Stdio: stdio(),
		SystemdCgroup: global.systemdCgroup,
	})
	if err != nil {
		return nil, err
	}
	if err := writePidFile(f.pidFile, c.Pid()); err != nil {
		_ = c.Delete(true)
		return nil, err
	}
	return c, nil
}

func createCmd() *command {
	var f createFlags
	cmd := &command{
		use:   "create [flags] <container-id>",
		short: "Create a container; its process waits for start",
		args:  exactArgs(1),
		run: func(cmd *command, args []string) error {
			_, err := f.create(args[0])
			return err
		},
	}
	f.register(cmd)
	return cmd
}
