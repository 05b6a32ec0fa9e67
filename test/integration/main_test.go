// Package integration drives the berth-runtime binary as containerd or a
// person would, as root, with real namespaces, cgroups and mounts, and
// checks the result from inside the container (the checker's report) and
// from the host.
package integration

import (
	"testing"

	"github.com/berth-project/berth/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
