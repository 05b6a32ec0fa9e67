// Package console passes a pseudo-terminal master between processes over a
// unix socket (SCM_RIGHTS), as runc's --console-socket does: the payload is
// the terminal's name, the single right is the master's descriptor.
package console

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Send sends fd over the connected unix socket sock, with name as payload.
func Send(sock int, name string, fd int) error {
	rights := unix.UnixRights(fd)
	if err := unix.Sendmsg(sock, []byte(name), rights, nil, 0); err != nil {
		return fmt.Errorf("send terminal over console socket: %w", err)
	}
	return nil
}

// Receive reads one descriptor sent by Send.
func Receive(sock *os.File) (*os.File, error) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	conn, err := sock.SyscallConn()
	if err != nil {
		return nil, err
	}
	var n, oobn int
	var rerr error
	err = conn.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, 0)
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, fmt.Errorf("receive terminal: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, errors.New("receive terminal: no descriptor in message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, errors.New("receive terminal: expected one descriptor")
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}

// NewPty opens a new pseudo-terminal pair from /dev/ptmx (the caller's
// devpts instance) and returns the master, the slave and the slave's name.
func NewPty() (master, slave *os.File, name string, err error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, "", fmt.Errorf("open /dev/ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, nil, "", fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		unix.Close(m)
		return nil, nil, "", fmt.Errorf("pty number: %w", err)
	}
	// TIOCGPTPEER opens the slave through the master, immune to a swapped
	// /dev/pts entry.
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		unix.Close(m)
		return nil, nil, "", fmt.Errorf("open pty slave: %w", errno)
	}
	name = fmt.Sprintf("/dev/pts/%d", n)
	return os.NewFile(uintptr(m), "ptmx"), os.NewFile(s, name), name, nil
}
