package units

import "testing"

func TestHumanSizeAndBar(t *testing.T) {
	if HumanSize(999) != "999B" || HumanSize(1234567) != "1.23MB" {
		t.Errorf("HumanSize: %s %s", HumanSize(999), HumanSize(1234567))
	}
	if got := Bar(50, 100, 10); got != "[=====>    ]      50B/100B" {
		t.Errorf("Bar: %q", got)
	}
}
