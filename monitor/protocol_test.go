package monitor

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/berth-project/berth/errdefs"
)

// TestErrorClassesRoundTrip: every error kind a monitor answers with
// reaches the client as that kind, its message intact.
func TestErrorClassesRoundTrip(t *testing.T) {
	for _, c := range errorClasses {
		sent := fmt.Errorf("cgroup controller missing: %w", c.kind)
		r := errorResponse(sent)
		got := r.err()
		if !errors.Is(got, c.kind) || !strings.HasPrefix(got.Error(), sent.Error()) {
			t.Errorf("%s: sent %v, got %v", c.name, sent, got)
		}
	}
	for _, k := range errdefs.Classes {
		if r := errorResponse(fmt.Errorf("x: %w", k)); r.Class == "" {
			t.Errorf("class %v does not cross the socket", k)
		}
	}
	plain := errorResponse(errors.New("plain"))
	if err := plain.err(); err == nil || errdefs.NotFound(err) || err.Error() != "plain" {
		t.Errorf("a plain error: %v", err)
	}
	none := Response{}
	if err := none.err(); err != nil {
		t.Errorf("no error: %v", err)
	}
}
