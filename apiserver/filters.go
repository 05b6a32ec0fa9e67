package apiserver

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/image"
)

// filters are the decoded `filters` query parameter: name → values.
type filters map[string][]string

// parseFilters reads both encodings clients send: {"k":{"v":true}} (the
// current one) and {"k":["v"]} (API < 1.22 style, still sent by some
// SDKs). Names not in allowed are an error, never ignored.
func parseFilters(raw string, allowed ...string) (filters, error) {
	f := filters{}
	if raw == "" {
		return f, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, fmt.Errorf("filters: %w: %v", errdefs.ErrInvalid, err)
	}
	for k, v := range m {
		if !slices.Contains(allowed, k) {
			return nil, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalid)
		}
		var set map[string]bool
		var list []string
		if json.Unmarshal(v, &set) == nil {
			for val, on := range set {
				if on {
					f[k] = append(f[k], val)
				}
			}
		} else if json.Unmarshal(v, &list) == nil {
			f[k] = list
		} else {
			return nil, fmt.Errorf("filter %q: %w: neither a set nor a list", k, errdefs.ErrInvalid)
		}
	}
	return f, nil
}

// bool returns a true/false filter's value, or nil when not given.
func (f filters) bool(name string) (*bool, error) {
	vals := f[name]
	if len(vals) == 0 {
		return nil, nil
	}
	switch strings.ToLower(vals[0]) {
	case "true", "1":
		return new(true), nil
	case "false", "0":
		return new(false), nil
	}
	return nil, fmt.Errorf("invalid filter '%s=%s': %w", name, vals[0], errdefs.ErrInvalid)
}

// matchImage applies the image list's filters: dangling, reference
// (a glob on the familiar name, "repo" or "repo:tag"), label (key or
// key=value). Values of one name are alternatives; names must all match.
// With a reference filter only the matching names and digests are shown,
// as dockerd does.
func (f filters) matchImage(img *image.Image) (tags, digests []string, ok bool, err error) {
	dangling, err := f.bool("dangling")
	if err != nil {
		return nil, nil, false, err
	}
	if dangling != nil && *dangling != (len(img.RepoTags) == 0) {
		return nil, nil, false, nil
	}
	for _, l := range f["label"] {
		k, v, hasValue := strings.Cut(l, "=")
		got, ok := img.Config.Config.Labels[k]
		if !ok || hasValue && got != v {
			return nil, nil, false, nil
		}
	}
	tags, digests = familiarNames(img.RepoTags), familiarNames(img.RepoDigests)
	refs := f["reference"]
	if len(refs) == 0 {
		return tags, digests, true, nil
	}
	pick := func(names []string, sep string) []string {
		var hits []string
		for _, name := range names {
			repo := name[:strings.LastIndex(name, sep)]
			for _, pattern := range refs {
				tagged := strings.Contains(pattern[strings.LastIndex(pattern, "/")+1:], ":")
				if matches(pattern, name) || !tagged && matches(pattern, repo) {
					hits = append(hits, name)
					break
				}
			}
		}
		return hits
	}
	tags, digests = pick(tags, ":"), pick(digests, "@")
	return tags, digests, len(tags)+len(digests) > 0, nil
}

func matches(pattern, s string) bool {
	ok, _ := path.Match(pattern, s)
	return ok
}
