package main

import (
	"github.com/berth-project/berth/container"
)

func runCmd() *command {
	var f createFlags
	var detach, keep bool
	cmd := &command{
		use:   "run [flags] <container-id>",
		short: "Create and start a container; wait for it and return its exit status",
		args:  exactArgs(1),
		run: func(cmd *command, args []string) error {
			var relay *signalRelay
			if !detach {
				relay = newSignalRelay()
				defer relay.stop()
			}
			var proxy *ttyProxy
			opts := container.CreateOpts{
				Root: global.root, ID: args[0], Bundle: f.bundle, ConsoleSocket: f.consoleSocket,
				NoPivot: f.noPivot, NoNewKeyring: f.noNewKeyring, PreserveFds: f.preserveFds, Stdio: stdio(),
				SystemdCgroup: global.systemdCgroup,
			}
			if f.consoleSocket == "" && !detach {
				var err error
				if proxy, err = newTTYProxy(); err != nil {
					return err
				}
				defer proxy.close()
				opts.Console = proxy.remote
			}
			c, err := container.Create(opts)
			if err != nil {
				return err
			}
			if err := writePidFile(f.pidFile, c.Pid()); err != nil {
				_ = c.Delete(true)
				return err
			}
			if proxy != nil && c.Spec().Process != nil && c.Spec().Process.Terminal {
				if err := proxy.attach(); err != nil {
					_ = c.Delete(true)
					return err
				}
			}
			if relay != nil {
				relay.target(c.Pid())
			}
			if err := c.Start(); err != nil {
				_ = c.Delete(true)
				return err
			}
			if detach {
				return nil
			}
			code, err := container.Wait(c.Pid())
			if err != nil {
				return err
			}
			if !keep {
				if err := c.Delete(true); err != nil {
					return err
				}
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "start the container and return; do not wait")
	cmd.Flags().BoolVar(&keep, "keep", false, "do not delete the container after it exits")
	return cmd
}
