// Package syncpipe is the protocol between the runtime (parent) and a
// container's init (child) over a socketpair.
//
// The parent first sends a binary bootstrap (Bootstrap) that the C
// constructor in container/nsenter reads; every later message in either
// direction is one JSON object per line. A Conn is not safe for concurrent
// use: each side has exactly one goroutine speaking on it.
package syncpipe

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/berth-project/berth/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Message types.
const (
	TypeUsermap = "usermap" // child → parent: write my uid/gid maps (ack with Ack)
	TypePid     = "pid"     // child → parent: the pid of the container process
	TypeError   = "error"   // child → parent: setup failed, Message says why
	TypeConfig  = "config"  // parent → child: Init carries the setup
	TypeHooks   = "hooks"   // child → parent: run prestart+createRuntime hooks now
	TypeHooksOK = "hooks-ok"
	TypeReady   = "ready" // child → parent: set up, waiting on the start barrier (or exec'ing)
)

// Ack is the byte the parent writes after it has written the id maps.
const Ack = 'k'

// Message is one line of the protocol.
type Message struct {
	Type    string `json:"type"`
	Pid     int    `json:"pid,omitempty"`
	Message string `json:"message,omitempty"`
	Init    *Init  `json:"init,omitempty"`
}

// Init is what the container init needs to know, beyond the file
// descriptors it inherits.
type Init struct {
	// ID is the container's id (names its session keyring).
	ID string `json:"id"`
	// Exec is true for a process joining a running container (no rootfs
	// setup); false for a container's first process.
	Exec bool `json:"exec,omitempty"`
	// Spec is the bundle's config, with Root.Path made absolute.
	Spec *specs.Spec `json:"spec"`
	// Process is the process to run (Spec.Process for a first process).
	Process *specs.Process `json:"process"`
	// NoPivot uses MS_MOVE+chroot instead of pivot_root.
	NoPivot bool `json:"noPivot,omitempty"`
	// PreserveFds counts descriptors from 3 up passed through to the process.
	PreserveFds int `json:"preserveFds,omitempty"`
	// ConsoleFd, if non-zero, is a connected unix socket to which init sends
	// the pty master (SCM_RIGHTS) when Process.Terminal is set.
	ConsoleFd int `json:"consoleFd,omitempty"`
	// SeccompFd, if non-zero, is a unix socket connected to
	// linux.seccomp.listenerPath: init sends it the notify descriptor.
	SeccompFd int `json:"seccompFd,omitempty"`
	// MountFds maps a bind mount's index in Spec.Mounts to a descriptor of
	// its source, cloned by the runtime on the host (open_tree) for a
	// container with a new user namespace, whose root may not be able to
	// reach the source path.
	MountFds map[int]int `json:"mountFds,omitempty"`
	// FifoFd, if non-zero, is the start barrier: init blocks reading it.
	FifoFd int `json:"fifoFd,omitempty"`
	// CgroupPaths maps each v1 controller (or "" for v2) to the container's
	// cgroup directory on the host, for `cgroup` mounts.
	CgroupPaths map[string]string `json:"cgroupPaths,omitempty"`
	// NoNewKeyring keeps the caller's session keyring instead of joining a
	// fresh one.
	NoNewKeyring bool `json:"noNewKeyring,omitempty"`
	// Seccomp is linux.seccomp compiled by the runtime, for the init to
	// load (nil when the spec has none).
	Seccomp *seccomp.Program `json:"seccomp,omitempty"`
	// StateJSON is the OCI state handed to createContainer and
	// startContainer hooks on stdin.
	StateJSON []byte `json:"stateJSON,omitempty"`
}

// Conn is one end of the sync socket.
type Conn struct {
	f   *os.File
	dec *json.Decoder
	r   *bufio.Reader
}

// New wraps f. Reads are buffered: after the first Recv, never read f
// directly again.
func New(f *os.File) *Conn {
	r := bufio.NewReader(f)
	return &Conn{f: f, r: r, dec: json.NewDecoder(r)}
}

// File returns the underlying file.
func (c *Conn) File() *os.File { return c.f }

// Close closes the socket.
func (c *Conn) Close() error { return c.f.Close() }

// Send writes one message.
func (c *Conn) Send(m Message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = c.f.Write(append(b, '\n'))
	return err
}

// Recv reads one message. A message of TypeError is returned as an error.
// io.EOF means the other side went away without a word.
func (c *Conn) Recv() (Message, error) {
	var m Message
	if err := c.dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return m, io.EOF
		}
		return m, fmt.Errorf("sync pipe: %w", err)
	}
	if m.Type == TypeError {
		return m, errors.New(m.Message)
	}
	return m, nil
}

// Expect reads one message and fails unless it has type t.
func (c *Conn) Expect(t string) (Message, error) {
	m, err := c.Recv()
	if err != nil {
		return m, err
	}
	if m.Type != t {
		return m, fmt.Errorf("sync pipe: expected %q, got %q", t, m.Type)
	}
	return m, nil
}

// WriteAck writes the id-map acknowledgement byte.
func (c *Conn) WriteAck() error {
	_, err := c.f.Write([]byte{Ack})
	return err
}

// Bootstrap is the first message, for the C constructor.
type Bootstrap struct {
	Join        []Join // existing namespaces to enter
	CloneFlags  uintptr
	TimeOffsets []string // lines for /proc/self/timens_offsets
	// CgroupTasks are v1 `tasks` files the constructor writes "0" to, and
	// CgroupClone a cgroup2 directory it clones the container process
	// into (see cgroups.SelfJoin). Empty: the parent places the process.
	CgroupTasks []string
	CgroupClone string
}

// Join names one namespace to enter.
type Join struct {
	Type string // the OCI type: "network", "mount", ...
	Path string
}

// WriteBootstrap sends b in the constructor's framing.
func (c *Conn) WriteBootstrap(b Bootstrap) error {
	var sb strings.Builder
	for _, j := range b.Join {
		if strings.ContainsAny(j.Path, "\n") || strings.ContainsAny(j.Type, " \n") {
			return fmt.Errorf("namespace path %q: invalid characters", j.Path)
		}
		fmt.Fprintf(&sb, "join %s %s\n", j.Type, j.Path)
	}
	if b.CloneFlags != 0 {
		fmt.Fprintf(&sb, "clone %d\n", b.CloneFlags)
	}
	for _, l := range b.TimeOffsets {
		fmt.Fprintf(&sb, "timens %s\n", l)
	}
	for _, p := range append(slices.Clone(b.CgroupTasks), b.CgroupClone) {
		if strings.ContainsAny(p, "\n") {
			return fmt.Errorf("cgroup path %q: invalid characters", p)
		}
	}
	for _, p := range b.CgroupTasks {
		fmt.Fprintf(&sb, "cgtasks %s\n", p)
	}
	if b.CgroupClone != "" {
		fmt.Fprintf(&sb, "cgclone %s\n", b.CgroupClone)
	}
	buf := make([]byte, 4, 4+sb.Len())
	binary.LittleEndian.PutUint32(buf, uint32(sb.Len()))
	buf = append(buf, sb.String()...)
	_, err := c.f.Write(buf)
	return err
}
