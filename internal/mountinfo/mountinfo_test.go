package mountinfo

import "testing"

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{`/a\040b\011c`: "/a b\tc", `/plain`: "/plain", `/back\134slash`: `/back\slash`, `/short\04`: `/short\04`} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
