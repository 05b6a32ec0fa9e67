package initproc

import (
	"fmt"

	"github.com/berth-project/berth/container/console"
	"github.com/berth-project/berth/container/syncpipe"
	"golang.org/x/sys/unix"
)

// setupConsole gives the process a new terminal as its controlling tty and
// stdio, sends the master to the console socket, and (for a container's
// first process) binds the slave over /dev/console.
func setupConsole(in *syncpipe.Init) error {
	if in.ConsoleFd == 0 {
		return fmt.Errorf("process.terminal is set but no console socket was given")
	}
	master, slave, name, err := console.NewPty()
	if err != nil {
		return err
	}
	defer master.Close()
	defer slave.Close()
	// The process's user owns its terminal, as under runc (the group
	// stays devpts's, tty).
	if err := unix.Fchown(int(slave.Fd()), int(in.Process.User.UID), -1); err != nil {
		return fmt.Errorf("give the terminal to uid %d: %w", in.Process.User.UID, err)
	}
	if sz := in.Process.ConsoleSize; sz != nil {
		_ = unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(sz.Height), Col: uint16(sz.Width)})
	}
	if !in.Exec {
		fd, err := unix.Open("/dev/console", unix.O_CREAT|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == nil {
			unix.Close(fd)
			if err := unix.Mount(name, "/dev/console", "", unix.MS_BIND, ""); err != nil {
				return fmt.Errorf("bind %s to /dev/console: %w", name, err)
			}
		}
	}
	if err := console.Send(in.ConsoleFd, name, int(master.Fd())); err != nil {
		return err
	}
	unix.Close(in.ConsoleFd)
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(int(slave.Fd()), i, 0); err != nil {
			return fmt.Errorf("dup terminal to fd %d: %w", i, err)
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("make terminal controlling: %w", err)
	}
	return nil
}
