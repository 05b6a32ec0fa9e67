package engine

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/errdefs"
)

// Stop and kill signals in the forms docker's CLI and API users send them.
func TestParseSignal(t *testing.T) {
	for in, want := range map[string]unix.Signal{
		"": unix.SIGKILL, "SIGTERM": unix.SIGTERM, "TERM": unix.SIGTERM, "term": unix.SIGTERM,
		"sigusr1": unix.SIGUSR1, "9": unix.SIGKILL, "15": unix.SIGTERM, "64": unix.Signal(64),
		"WINCH": unix.SIGWINCH, "SIGRTMIN": 34, "RTMIN+3": 37, "RTMAX-2": 62, "RTMAX": 64,
	} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "65", "-1", "NOPE", "SIG", "1.5", "RTMIN+31", "RTMAX-0"} {
		if got, err := ParseSignal(in); !errdefs.Invalid(err) {
			t.Errorf("ParseSignal(%q) = %v, %v; want an invalid-argument error", in, got, err)
		}
	}
}
