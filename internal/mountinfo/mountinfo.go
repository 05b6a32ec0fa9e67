// Package mountinfo reads fields of /proc/PID/mountinfo (proc(5)).
package mountinfo

import (
	"strconv"
	"strings"
)

// Unescape undoes the \NNN (octal) escapes mountinfo writes for spaces,
// tabs, newlines and backslashes in paths.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
