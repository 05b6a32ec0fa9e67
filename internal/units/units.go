// Package units formats byte counts and progress bars as docker prints
// them.
package units

import (
	"fmt"
	"strings"
)

// Bar renders "[=====>     ]  1.2MB/3.4MB", docker's progress bar.
func Bar(current, total int64, width int) string {
	if total <= 0 {
		return HumanSize(current)
	}
	n := min(int(float64(width)*float64(current)/float64(total)), width)
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	}
	return fmt.Sprintf("[%s] %8s/%s", bar, HumanSize(current), HumanSize(total))
}

// HumanSize prints a byte count in decimal units, as docker does: "1.23MB".
func HumanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", n)
	}
	return fmt.Sprintf("%.3g%s", f, units[i])
}
