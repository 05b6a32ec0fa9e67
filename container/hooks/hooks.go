// Package hooks runs OCI lifecycle hooks: each hook's binary with its args
// and env, the container state as JSON on stdin, killed at its timeout.
package hooks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Run runs hooks of one kind (named for errors, e.g. "prestart") in order
// and stops at the first that fails, returning an error naming it.
func Run(kind string, list []specs.Hook, state []byte) error {
	return RunIn(kind, list, state, "")
}

// RunIn is Run with the hooks' working directory set to dir ("" keeps the
// caller's).
func RunIn(kind string, list []specs.Hook, state []byte, dir string) error {
	for i, h := range list {
		if err := runOne(h, state, dir); err != nil {
			return fmt.Errorf("hooks.%s[%d] %s: %w", kind, i, h.Path, err)
		}
	}
	return nil
}

// runOne runs one hook. (os.StartProcess, not os/exec: the runtime's
// binary size is its memory.)
func runOne(h specs.Hook, state []byte, dir string) error {
	if h.Timeout != nil && *h.Timeout <= 0 {
		return fmt.Errorf("timeout must be positive, got %d", *h.Timeout)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return err
	}
	args := h.Args
	if len(args) == 0 {
		args = []string{h.Path}
	}
	env := h.Env
	if env == nil {
		env = []string{}
	}
	proc, err := os.StartProcess(h.Path, args, &os.ProcAttr{Dir: dir, Env: env, Files: []*os.File{inR, outW, outW}})
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return err
	}
	go func() {
		_, _ = inW.Write(state) // a hook need not read its stdin
		inW.Close()
	}()
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(&out, outR)
		close(copied)
	}()
	var timedOut atomic.Bool
	if h.Timeout != nil {
		t := time.AfterFunc(time.Duration(*h.Timeout)*time.Second, func() {
			timedOut.Store(true)
			_ = proc.Kill()
		})
		defer t.Stop()
	}
	st, err := proc.Wait()
	// A hook that forks a daemon must not keep us waiting on its pipes.
	select {
	case <-copied:
	case <-time.After(time.Second):
	}
	outR.Close()
	<-copied
	if timedOut.Load() {
		return fmt.Errorf("timed out after %ds", *h.Timeout)
	}
	if err == nil && !st.Success() {
		err = errors.New(st.String())
	}
	if err != nil {
		if msg := strings.TrimSpace(out.String()); msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}
