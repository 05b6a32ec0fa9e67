// Package critest runs the CRI validation suite of cri-tools (critest)
// against Debian's containerd twice, with runc and with berth-runtime as
// the runtime handler, and compares the outcomes case by case.
package critest

import (
	"testing"

	"github.com/berth-project/berth/test/berthd"
	"github.com/berth-project/berth/test/harness"
)

// berthd's binaries (for the CRI image test) go too.
func TestMain(m *testing.M) { harness.Main(m, berthd.Cleanup) }
