package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-project/berth/container/capabilities"
	"github.com/berth-project/berth/container/initproc"
	"github.com/berth-project/berth/container/rootfs"
	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// LoadSpec reads <bundle>/config.json, makes root.path absolute and
// validates the result. Errors name the file or field at fault.
func LoadSpec(bundle string) (*specs.Spec, error) {
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%s: no such file (is %s an OCI bundle?): %w", path, bundle, errdefs.ErrNotFound)
		}
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: malformed JSON: %v: %w", path, err, errdefs.ErrInvalid)
	}
	if s.Root == nil || s.Root.Path == "" {
		return nil, fmt.Errorf("%s: root.path is required: %w", path, errdefs.ErrInvalid)
	}
	if !filepath.IsAbs(s.Root.Path) {
		s.Root.Path = filepath.Join(bundle, s.Root.Path)
	}
	if err := Validate(&s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

// specMajor returns the major number of a semantic version such as
// "1.2.0" or "1.0.2-dev", or -1 if v is not one.
func specMajor(v string) int {
	core, _, _ := strings.Cut(v, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return -1
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 10, 32); err != nil {
			return -1
		}
	}
	major, _ := strconv.Atoi(parts[0])
	return major
}

// inv is an ErrInvalid error with the message format makes.
func inv(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalid)...)
}

// Validate checks a spec for what the runtime cannot or must not run.
func Validate(s *specs.Spec) error {
	major := specMajor(s.Version)
	if major < 0 {
		return inv("ociVersion %q is not a version", s.Version)
	}
	if major != 1 {
		return inv("ociVersion %q is not supported (berth-runtime speaks runtime-spec 1.x)", s.Version)
	}
	st, err := os.Stat(s.Root.Path)
	if err != nil {
		return fmt.Errorf("root.path %s: %w", s.Root.Path, errdefs.ErrNotFound)
	}
	if !st.IsDir() {
		return inv("root.path %s is not a directory", s.Root.Path)
	}
	if s.Linux == nil {
		return inv("linux: section is required on Linux")
	}
	// process is optional until start (runtime-spec: REQUIRED when start is
	// called); a container created without one can only be deleted.
	if p := s.Process; p != nil {
		if err := validateProcess(p); err != nil {
			return err
		}
	}
	if err := seccomp.Validate(s.Linux.Seccomp); err != nil {
		return err
	}
	if pers := s.Linux.Personality; pers != nil {
		if _, ok := initproc.Personality(pers.Domain); !ok {
			return inv("linux.personality.domain %q must be LINUX or LINUX32", pers.Domain)
		}
		if len(pers.Flags) > 0 {
			return fmt.Errorf("linux.personality.flags: no flags are supported: %w", errdefs.ErrUnavailable)
		}
	}
	if s.Linux.IntelRdt != nil {
		return fmt.Errorf("linux.intelRdt: not supported: %w", errdefs.ErrUnavailable)
	}
	types := map[specs.LinuxNamespaceType]bool{}
	for i, ns := range s.Linux.Namespaces {
		if _, ok := nsFlags[ns.Type]; !ok {
			return inv("linux.namespaces[%d]: unknown type %q", i, ns.Type)
		}
		if types[ns.Type] {
			return inv("linux.namespaces: type %q given twice", ns.Type)
		}
		types[ns.Type] = true
		if ns.Path != "" {
			if _, err := os.Stat(ns.Path); err != nil {
				return fmt.Errorf("linux.namespaces[%d] (%s): path %s: %w", i, ns.Type, ns.Path, errdefs.ErrNotFound)
			}
		}
	}
	if (len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0) && !types[specs.UserNamespace] {
		return inv("linux.uidMappings/gidMappings need a user namespace")
	}
	if s.Hostname != "" && !types[specs.UTSNamespace] {
		return inv("hostname needs a uts namespace")
	}
	if s.Domainname != "" && !types[specs.UTSNamespace] {
		return inv("domainname needs a uts namespace")
	}
	if len(s.Linux.TimeOffsets) > 0 && !types[specs.TimeNamespace] {
		return inv("linux.timeOffsets need a time namespace")
	}
	for i, mnt := range s.Mounts {
		if mnt.Destination == "" {
			return inv("mounts[%d].destination is required", i)
		}
		if !filepath.IsAbs(mnt.Destination) {
			s.Mounts[i].Destination = "/" + mnt.Destination
		}
		if err := checkIDMap(s, i); err != nil {
			return err
		}
	}
	if s.Linux.RootfsPropagation != "" {
		switch s.Linux.RootfsPropagation {
		case "shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate", "runbindable":
		default:
			return inv("linux.rootfsPropagation %q is not a propagation mode", s.Linux.RootfsPropagation)
		}
	}
	for i, d := range s.Linux.Devices {
		switch d.Type {
		case "c", "b", "u", "p":
		default:
			return inv("linux.devices[%d] %s: type %q must be c, b, u or p", i, d.Path, d.Type)
		}
	}
	for k := range s.Linux.Sysctl {
		if strings.Contains(k, "/") || strings.Contains(k, "..") {
			return inv("linux.sysctl: bad key %q", k)
		}
	}
	return nil
}

// validateProcess checks a process for what the runtime cannot run.
func validateProcess(p *specs.Process) error {
	if len(p.Args) == 0 {
		return inv("process.args must not be empty")
	}
	if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
		return inv("process.cwd %q must be an absolute path", p.Cwd)
	}
	if dropped := capabilities.DropUngrantableAmbient(p.Capabilities); len(dropped) > 0 {
		Warnf("process.capabilities.ambient: %v are not both permitted and inheritable; they are not raised", dropped)
	}
	if err := capabilities.Validate(p.Capabilities); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, rl := range p.Rlimits {
		if _, ok := initproc.Rlimit(rl.Type); !ok {
			return inv("process.rlimits: unknown type %q", rl.Type)
		}
		if seen[rl.Type] {
			return inv("process.rlimits: %s given twice", rl.Type)
		}
		if rl.Soft > rl.Hard {
			return inv("process.rlimits %s: soft limit %d exceeds hard limit %d", rl.Type, rl.Soft, rl.Hard)
		}
		seen[rl.Type] = true
	}
	if p.ApparmorProfile != "" {
		return fmt.Errorf("process.apparmorProfile %q: AppArmor is not enabled on this host: %w", p.ApparmorProfile, errdefs.ErrUnavailable)
	}
	if p.SelinuxLabel != "" {
		return fmt.Errorf("process.selinuxLabel: SELinux is not enabled on this host: %w", errdefs.ErrUnavailable)
	}
	return nil
}

// checkIDMap: an idmapped mount (idmap or ridmap, runtime-spec 1.2) is a
// bind, and has both uid and gid mappings of its own, or none and a
// container user namespace whose mappings it takes.
func checkIDMap(s *specs.Spec, i int) error {
	m := s.Mounts[i]
	own := len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0
	switch {
	case rootfs.IDMapOf(m.Options) == rootfs.NoIDMap:
		if own {
			return inv("mounts[%d] (%s): uidMappings/gidMappings need the idmap or ridmap option", i, m.Destination)
		}
	case m.Type != "bind" && !slices.Contains(m.Options, "bind") && !slices.Contains(m.Options, "rbind"):
		return inv("mounts[%d] (%s): only a bind mount can be idmapped, not type %q", i, m.Destination, m.Type)
	case own && (len(m.UIDMappings) == 0 || len(m.GIDMappings) == 0):
		return inv("mounts[%d] (%s): an idmapped mount needs both uidMappings and gidMappings", i, m.Destination)
	case !own && (len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0):
		return inv("mounts[%d] (%s): idmap without uidMappings/gidMappings takes the container's user namespace mappings, and there are none", i, m.Destination)
	}
	return nil
}
