package main

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-project/berth/container"
	"golang.org/x/sys/unix"
)

func killCmd() *command {
	var all bool
	cmd := &command{
		use:   "kill [flags] <container-id> [signal]",
		short: "Send a signal (default SIGTERM) to a container's init, or to all its processes",
		args:  rangeArgs(1, 2),
		run: func(cmd *command, args []string) error {
			sig := syscall.SIGTERM
			if len(args) == 2 {
				var err error
				if sig, err = parseSignal(args[1]); err != nil {
					return err
				}
			}
			c, err := container.Load(global.root, args[0])
			if err != nil {
				return err
			}
			return c.Signal(sig, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "signal every process in the container")
	return cmd
}

// parseSignal accepts "9", "KILL" and "SIGKILL".
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 64 { // 0, as runc: only whether the init can be signalled
			return 0, fmt.Errorf("signal %d is out of range", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}
