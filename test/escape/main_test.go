package escape

import (
	"testing"

	"github.com/berth-project/berth/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
