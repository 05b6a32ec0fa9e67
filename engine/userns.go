package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	ctypes "github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/userns"
)

// UsernsOptions say which user namespaces containers get.
type UsernsOptions struct {
	// Pool hands out a block of subordinate ids per container; nil: the
	// daemon has none, and only host mode is possible.
	Pool *userns.Pool
	// Remap is the one mapping every container shares in "remap" mode
	// (dockerd's --userns-remap), a block the pool never hands out.
	Remap *userns.Mapping
	// Default is the mode of a container that asks for none: "host",
	// "remap" or "auto".
	Default string
	// Source names where the ids come from, for errors and docker info.
	Source string
	// Layers is how image layers are mounted for a user namespace:
	// "idmap" (idmapped, never copied), "copy" (chown-copied once per
	// range, cached) or "" / "auto" (idmap where the kernel and file
	// system allow it, else copy).
	Layers string
}

// usernsMode resolves a container's HostConfig.UsernsMode: "host" (no
// user namespace), "auto" (a block of its own) or "remap" (the daemon's
// shared mapping); "" is the daemon's default.
func (e *Engine) usernsMode(hc *ctypes.HostConfig) (string, error) {
	mode := string(hc.UsernsMode)
	if mode == "" {
		mode = e.o.Userns.Default
		if mode == "" {
			mode = "host"
		}
	}
	switch mode {
	case "host":
	case "auto":
		if e.o.Userns.Pool == nil || e.o.Userns.Pool.Size() == 0 {
			return "", errdefs.New(errdefs.ErrInvalid, "--userns=auto needs subordinate ids: start berthd with --userns-remap=default (or a user with ranges in /etc/subuid and /etc/subgid)")
		}
	case "remap":
		if e.o.Userns.Remap == nil {
			return "", errdefs.New(errdefs.ErrInvalid, "--userns=remap needs berthd started with --userns-remap")
		}
	default:
		return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid user namespace mode %q: host, auto or remap", mode))
	}
	return mode, nil
}

// checkUserns refuses what cannot work in a user namespace: what needs
// host privilege or the host's namespaces, and binds the container's root
// could not read.
func checkUserns(hc *ctypes.HostConfig, m userns.Mapping) error {
	refuse := func(what string) error {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s cannot be used with a user namespace: add --userns=host", what))
	}
	switch {
	case hc.Privileged:
		return refuse("--privileged")
	case hc.NetworkMode == "host":
		return refuse("--network=host")
	case hc.PidMode == "host":
		return refuse("--pid=host")
	case hc.IpcMode == "host":
		return refuse("--ipc=host")
	case hc.UTSMode == "host":
		return refuse("--uts=host")
	case joinsNetns(hc.NetworkMode), strings.HasPrefix(string(hc.PidMode), "container:"), strings.HasPrefix(string(hc.IpcMode), "container:"):
		return refuse("joining another container's namespaces")
	case len(hc.Devices) > 0:
		return refuse("--device (host devices)")
	}
	for _, raw := range hc.Binds {
		b, err := parseBind(raw)
		if err != nil || b.volume || b.idmap {
			continue // an idmapped bind's files are the container root's
		}
		if err := readableBy(b.src, m); err != nil {
			return err
		}
	}
	for _, mt := range hc.Mounts {
		if mt.Type == "bind" {
			if err := readableBy(mt.Source, m); err != nil {
				return err
			}
		}
	}
	return nil
}

// readableBy: the container's root (a user of no group on the host) can
// read path, and search it if it is a directory. A missing path is left
// to be made as a directory, as docker makes it.
func readableBy(path string, m userns.Mapping) error {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("bind source %s: %w", path, err)
	}
	need := uint32(4)
	if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		need |= 1
	}
	if permFor(&st, m)&need != need {
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("bind source %s (mode %04o, owner %d:%d) is not readable by the container's root, host uid %d in its user namespace: make it readable, or add --userns=host",
			path, st.Mode&0o7777, st.Uid, st.Gid, m.RootUID()))
	}
	return nil
}

// permFor is the rwx bits of st that apply to a process of m's ids: the
// owner's if m maps its owner, else the group's if m maps its group, else
// the others'.
func permFor(st *syscall.Stat_t, m userns.Mapping) uint32 {
	switch {
	case m.UID.Contains(st.Uid):
		return st.Mode >> 6 & 7
	case m.GID.Contains(st.Gid):
		return st.Mode >> 3 & 7
	}
	return st.Mode & 7
}

// searchableBy: the container's root can reach dir, where its root
// filesystem is mounted (the runtime mounts there from inside the user
// namespace): every directory from / to dir lets it search.
func searchableBy(dir string, m userns.Mapping) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for p := abs; ; p = filepath.Dir(p) {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			return err
		}
		if permFor(&st, m)&1 == 0 {
			return errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("%s (mode %04o) does not let the container's root, host uid %d, reach the exec root %s: give it o+x (as 0711), or use --userns=host",
				p, st.Mode&0o7777, m.RootUID(), abs))
		}
		if p == "/" {
			return nil
		}
	}
}

// checkIdmapBinds: a bind with the idmap option needs a user namespace
// to map through, and a daemon that may idmap the host's file systems.
func (e *Engine) checkIdmapBinds(hc *ctypes.HostConfig, mode string) error {
	for _, raw := range hc.Binds {
		b, err := parseBind(raw)
		if err != nil || b.volume || !b.idmap {
			continue
		}
		switch {
		case mode == "host":
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("bind %s: idmap maps a host path through the container's user namespace, and it has none: add --userns=auto, or start berthd with --userns-remap or --userns-auto", raw))
		case userns.Nested():
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("bind %s: idmap needs a berthd running as the host's root (a rootless daemon may not idmap the host's file systems)", raw))
		case e.copyLayers:
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("bind %s: idmap: this daemon does not idmap (%s)", raw, e.layersWhy))
		}
	}
	return nil
}

// assignUserns gives a container being created its mapping: nil for
// host mode. owned says the block is the container's own (auto), for the
// caller to return to the pool if the create fails.
func (e *Engine) assignUserns(id string, hc *ctypes.HostConfig) (m *userns.Mapping, owned bool, err error) {
	mode, err := e.usernsMode(hc)
	if err != nil {
		return nil, false, err
	}
	if err := e.checkIdmapBinds(hc, mode); err != nil || mode == "host" {
		return nil, false, err
	}
	var got userns.Mapping
	if mode == "remap" {
		got = *e.o.Userns.Remap
	} else if got, err = e.o.Userns.Pool.Alloc(id); err != nil {
		return nil, false, err
	}
	err = checkUserns(hc, got)
	if err == nil {
		err = searchableBy(e.o.ExecRoot, got)
	}
	if err != nil {
		if mode == "auto" {
			e.o.Userns.Pool.Free(id)
		}
		return nil, false, err
	}
	return &got, mode == "auto", nil
}

// chownToRoot makes paths owned by the container's root, if it has a
// user namespace.
func chownToRoot(m *userns.Mapping, paths ...string) error {
	if m == nil {
		return nil
	}
	for _, p := range paths {
		if p == "" {
			continue
		}
		if err := os.Lchown(p, m.RootUID(), m.RootGID()); err != nil {
			return err
		}
	}
	return nil
}

// mountRootfs mounts r's root filesystem on target: through its user
// namespace's mapping if it has one, so that the image's files are owned
// by the container's ids without being copied.
func (e *Engine) mountRootfs(r *Record, target string) error {
	if r.IDMap == nil {
		return e.o.Images.MountRootfs(r.ID, target)
	}
	if e.copyLayers {
		return e.o.Images.MountRootfsShifted(r.ID, target, *r.IDMap)
	}
	ns, err := userns.Open(*r.IDMap)
	if err != nil {
		return err
	}
	defer ns.Close()
	return e.o.Images.MountRootfsMapped(r.ID, target, ns, r.IDMap.RootUID(), r.IDMap.RootGID())
}

// chooseLayers settles how layers are mounted for user namespaces
// (UsernsOptions.Layers): in auto, an idmapped overlay is tried once, and
// its failure makes the daemon copy, saying why.
func (e *Engine) chooseLayers() error {
	u := e.o.Userns
	if u.Pool == nil {
		return nil
	}
	switch u.Layers {
	case "copy":
		e.copyLayers, e.layersWhy = true, "--userns-layers=copy"
		return nil
	case "", "auto", "idmap":
	default:
		return fmt.Errorf("--userns-layers=%s: auto, idmap or copy", u.Layers)
	}
	// Any mapping serves the probe; this one no container gets.
	probe := userns.Mapping{UID: userns.Range{Start: 0x7fff0000, Size: 1}, GID: userns.Range{Start: 0x7fff0000, Size: 1}}
	ns, err := userns.Open(probe)
	if err == nil {
		err = e.o.Images.ProbeMapped(ns)
		ns.Close()
	}
	if err == nil {
		return nil
	}
	if u.Layers == "idmap" {
		return fmt.Errorf("--userns-layers=idmap: layers cannot be idmapped here: %w", err)
	}
	e.copyLayers, e.layersWhy = true, "layers cannot be idmapped here: "+err.Error()
	e.log.Warn("user namespaces: image layers will be chown-copied once per range", "reason", err)
	return nil
}

// idsToContainer maps host ids to m's container ids; nil for no mapping.
func idsToContainer(m *userns.Mapping) func(uid, gid int) (int, int) {
	if m == nil {
		return nil
	}
	return m.ToContainer
}

// UsernsInfo describes the daemon's user namespaces for docker info: the
// security option dockerd shows with --userns-remap (or none), and a
// status line.
func (e *Engine) UsernsInfo() (securityOpt string, status [2]string) {
	u := e.o.Userns
	mode := u.Default
	if mode == "" {
		mode = "host"
	}
	if u.Pool == nil {
		return "", [2]string{"User namespaces", "default host; none available (no subordinate ids)"}
	}
	if mode != "host" {
		securityOpt = "name=userns"
	}
	layers := "image layers and volumes idmapped, never copied"
	if e.copyLayers {
		layers = fmt.Sprintf("image layers chown-copied once per range and cached, volumes owned by their first user (%s)", e.layersWhy)
	}
	return securityOpt, [2]string{"User namespaces", fmt.Sprintf("default %s; %d of %d ranges of %d ids in use, from %s; %s",
		mode, u.Pool.Taken(), u.Pool.Size(), userns.BlockSize, u.Source, layers)}
}
