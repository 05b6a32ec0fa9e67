// Package dockerparity runs the same docker CLI commands against Debian's
// dockerd (docker.io, the oracle) and against berthd, and compares exit
// codes and output. dockerd is a comparison oracle only: it runs in a
// network namespace of its own, on its own socket, data root and exec
// root, and everything it made is removed when the test ends.
package dockerparity

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/berth-project/berth/test/oracle"
)

// target is one engine the docker CLI drives.
type target struct {
	name string
	sock string
	cfg  string // DOCKER_CONFIG
}

// docker runs the docker CLI against tg and returns its output (stdout,
// then stderr) and exit code.
func (tg *target) docker(stdin string, args ...string) (string, int) {
	return oracle.CLI(tg.sock, tg.cfg, stdin, args...)
}

// startDockerd starts the oracle in a network namespace of its own.
func startDockerd(t *testing.T) *target {
	d := oracle.Start(t, "")
	return &target{name: "dockerd", sock: d.Sock, cfg: filepath.Join(d.Dir, "cli")}
}

var (
	longID  = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	shortID = regexp.MustCompile(`\b[0-9a-f]{12}\b`)
)

// normalise makes two engines' outputs comparable: container and image
// ids become placeholders.
func normalise(s string) string {
	s = longID.ReplaceAllString(s, "<ID>")
	s = shortID.ReplaceAllString(s, "<id>")
	return strings.TrimRight(s, "\n")
}

// result is one step's outcome on one engine.
type result struct {
	out  string
	code int
}

func (r result) String() string { return fmt.Sprintf("exit %d: %q", r.code, r.out) }
