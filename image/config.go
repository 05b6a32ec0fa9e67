package image

import (
	"maps"
	"slices"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultPath is the PATH a container gets when its image sets none, as
// in Docker.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Defaults are what an image contributes to a container's process and
// setup, after the user's overrides.
type Defaults struct {
	Args         []string // entrypoint followed by cmd
	Env          []string // KEY=value, PATH always present
	Cwd          string   // "/" when the image sets none
	User         string   // "" means root
	ExposedPorts []string // "80/tcp", sorted
	Volumes      []string // container paths, sorted
	StopSignal   string   // "SIGTERM" when the image sets none
	Labels       map[string]string
}

// Overrides are the user's choices that replace the image's, nil (or "")
// meaning "keep the image's".
type Overrides struct {
	Entrypoint []string // a non-nil empty slice clears the image's entrypoint
	Cmd        []string
	Env        []string // appended; a key given here replaces the image's
	WorkingDir string
	User       string
}

// RuntimeDefaults merges an image config with the user's overrides the way
// docker run does: a new entrypoint drops the image's cmd unless a cmd is
// given too; environment keys from the user win.
func RuntimeDefaults(c ocispec.ImageConfig, o Overrides) Defaults {
	d := Defaults{Cwd: c.WorkingDir, User: c.User, StopSignal: c.StopSignal, Labels: maps.Clone(c.Labels)}
	entry, cmd := c.Entrypoint, c.Cmd
	if o.Entrypoint != nil {
		entry, cmd = o.Entrypoint, nil
	}
	if o.Cmd != nil {
		cmd = o.Cmd
	}
	d.Args = append(slices.Clone(entry), cmd...)
	d.Env = mergeEnv(c.Env, o.Env)
	if o.WorkingDir != "" {
		d.Cwd = o.WorkingDir
	}
	if d.Cwd == "" {
		d.Cwd = "/"
	}
	if o.User != "" {
		d.User = o.User
	}
	if d.StopSignal == "" {
		d.StopSignal = "SIGTERM"
	}
	d.ExposedPorts = slices.Sorted(maps.Keys(c.ExposedPorts))
	d.Volumes = slices.Sorted(maps.Keys(c.Volumes))
	return d
}

func mergeEnv(image, user []string) []string {
	var out []string
	index := map[string]int{}
	for _, kv := range slices.Concat(image, user) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			continue
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	if _, ok := index["PATH"]; !ok {
		out = append(out, DefaultPath)
	}
	return out
}
