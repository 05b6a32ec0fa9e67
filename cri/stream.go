package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	remotecommand "k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/berth-project/berth/engine"
	"github.com/berth-project/berth/monitor"
	berthnet "github.com/berth-project/berth/network"
)

// ExecSync runs a command in a container and returns its output and exit
// code; past the timeout (if any) it is killed and DeadlineExceeded
// returned, as containerd does.
func (s *Server) ExecSync(ctx context.Context, r *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	c, err := s.findContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	if len(r.GetCmd()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "no command given")
	}
	var out, errOut limitedBuffer
	code, err := s.Engine.RunExec(ctx, c.rec.ID, r.GetCmd(), engine.ExecIO{Stdout: &out, Stderr: &errOut},
		time.Duration(r.GetTimeout())*time.Second)
	if errors.Is(err, engine.ErrExecTimeout) {
		return nil, status.Errorf(codes.DeadlineExceeded, "command %v in container %s: timeout %ds exceeded", r.GetCmd(), c.rec.ID, r.GetTimeout())
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &runtimeapi.ExecSyncResponse{Stdout: out.b, Stderr: errOut.b, ExitCode: int32(code)}, nil
}

// limitedBuffer keeps the first 16 MiB written to it, as the kubelet
// reads no more of an ExecSync's output.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 16<<20 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// Exec, Attach and PortForward hand back a URL of the streaming server,
// where the client's connection is served by streamRuntime.
func (s *Server) Exec(ctx context.Context, r *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	c, err := s.findContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	if !c.rec.State.Running() {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is not running", c.rec.ID)
	}
	if len(r.GetCmd()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "no command given")
	}
	return s.stream.GetExec(r)
}

func (s *Server) Attach(ctx context.Context, r *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	c, err := s.findContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	if !c.rec.State.Running() {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is not running", c.rec.ID)
	}
	return s.stream.GetAttach(r)
}

func (s *Server) PortForward(ctx context.Context, r *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	sb, err := s.findSandbox(r.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if !sb.ready() {
		return nil, status.Errorf(codes.FailedPrecondition, "pod sandbox %s is not ready", sb.rec.ID)
	}
	return s.stream.GetPortForward(r)
}

// streamRuntime serves the streaming server's connections.
type streamRuntime struct{ s *Server }

// resizes turns the streaming server's terminal sizes into the engine's.
func resizes(in <-chan remotecommand.TerminalSize) <-chan [2]uint16 {
	out := make(chan [2]uint16)
	go func() {
		defer close(out)
		for sz := range in {
			out <- [2]uint16{sz.Height, sz.Width}
		}
	}()
	return out
}

// execIO are the streaming server's streams as the engine takes them:
// a stream the client did not ask for is nil (not a nil WriteCloser in
// an interface).
func execIO(in io.Reader, out, errOut io.WriteCloser, tty bool) engine.ExecIO {
	x := engine.ExecIO{Stdin: in, Tty: tty}
	if out != nil {
		x.Stdout = out
	}
	if errOut != nil {
		x.Stderr = errOut
	}
	return x
}

func (rt streamRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	xio := execIO(in, out, errOut, tty)
	xio.Resize = resizes(resize)
	code, err := rt.s.Engine.RunExec(ctx, id, cmd, xio, 0)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitError(code)
	}
	return nil
}

// exitError is a command's non-zero exit, which the streaming server
// reports to the client as the command's status.
type exitError int

func (e exitError) Error() string   { return fmt.Sprintf("command terminated with exit code %d", int(e)) }
func (e exitError) String() string  { return e.Error() }
func (e exitError) Exited() bool    { return true }
func (e exitError) ExitStatus() int { return int(e) }

func (rt streamRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	conn, raw, err := rt.s.Engine.Attach(ctx, id, monitor.AttachConfig{Stdin: in != nil, Stdout: out != nil, Stderr: errOut != nil})
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() {
		for sz := range resize {
			_ = rt.s.Engine.Resize(id, sz.Height, sz.Width)
		}
	}()
	done := engine.CopyStreams(conn, raw, execIO(in, out, errOut, tty))
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// PortForward joins stream to a TCP connection to port on the pod's
// loopback, made in the pod's network namespace.
func (rt streamRuntime) PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	sb, err := rt.s.findSandbox(podID)
	if err != nil {
		return err
	}
	var conn net.Conn
	dial := func() (err error) {
		conn, err = net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
		return err
	}
	if sb.hostNetwork() {
		err = dial()
	} else if ns := netnsOf(sb, rt.s.readState(sb.rec.ID)); ns == "" {
		err = fmt.Errorf("pod %s has no network namespace", sb.rec.ID)
	} else {
		err = berthnet.RunIn(ns, dial)
	}
	if err != nil {
		return fmt.Errorf("port forward to port %d of pod %s: %w", port, sb.rec.ID, err)
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() { io.Copy(conn, stream); conn.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(stream, conn); done <- struct{}{} }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// newStreamServer makes the streaming server on a loopback port of its
// own, as containerd's (stream_server_address 127.0.0.1, port 0).
func (s *Server) newStreamServer(addr string) (streaming.Server, net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("the CRI streaming server: %w", err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = l.Addr().String()
	srv, err := streaming.NewServer(cfg, streamRuntime{s})
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	return srv, l, nil
}
