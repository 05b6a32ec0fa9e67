// Package dockerignore reads a build context's .dockerignore into a
// pattern matcher, as docker does: one pattern per line, "#" comments,
// "!" exceptions, paths relative to the context root.
package dockerignore

import (
	"io"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
)

// Read parses a .dockerignore.
func Read(r io.Reader) (*patternmatcher.PatternMatcher, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var pats []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		neg := strings.HasPrefix(l, "!")
		l = strings.TrimPrefix(l, "!")
		l = filepath.Clean(strings.TrimPrefix(filepath.ToSlash(l), "/"))
		if neg {
			l = "!" + l
		}
		pats = append(pats, l)
	}
	return patternmatcher.New(pats)
}
