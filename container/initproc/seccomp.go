package initproc

import (
	"encoding/json"
	"fmt"

	"github.com/berth-project/berth/container/syncpipe"
	"github.com/berth-project/berth/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// loadSeccomp loads the compiled filter and, if it notifies, sends the
// notify descriptor with the container process state to the listener, as
// runc does.
func loadSeccomp(in *syncpipe.Init, prog *seccomp.Program) error {
	fd, err := prog.Load()
	if err != nil {
		return err
	}
	if fd < 0 {
		return nil
	}
	defer unix.Close(fd)
	if in.SeccompFd == 0 {
		return fmt.Errorf("linux.seccomp: a notify rule but no listener socket")
	}
	var st specs.State
	_ = json.Unmarshal(in.StateJSON, &st)
	msg, err := json.Marshal(specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{specs.SeccompFdName},
		Pid:      st.Pid,
		Metadata: in.Spec.Linux.Seccomp.ListenerMetadata,
		State:    st,
	})
	if err != nil {
		return err
	}
	if err := unix.Sendmsg(in.SeccompFd, msg, unix.UnixRights(fd), nil, 0); err != nil {
		return fmt.Errorf("linux.seccomp.listenerPath: send notify descriptor: %w", err)
	}
	unix.Close(in.SeccompFd)
	return nil
}
