package engine

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/storage"
	"github.com/berth-project/berth/userns"
	"github.com/berth-project/berth/volume"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// VolumeMount is a volume mounted in a container.
type VolumeMount struct {
	Name        string
	Destination string
	ReadOnly    bool
	NoCopy      bool // never copy the image's content in
	Anonymous   bool // made for this container; `rm -v` removes it
}

// createVolumes resolves a new container's volumes: `-v name:/dst`,
// `--mount type=volume`, and an anonymous volume for every path of the
// image's (or the user's) Volumes not mounted otherwise. Named volumes that
// do not exist are created, as docker does.
func (e *Engine) createVolumes(cfg *ctypes.Config, hc *ctypes.HostConfig) ([]VolumeMount, error) {
	var out []VolumeMount
	taken := map[string]bool{}
	fail := func(err error) ([]VolumeMount, error) {
		e.removeAnonymous(out)
		return nil, err
	}
	add := func(name, dst string, ro, nocopy bool) error {
		dst = filepath.Clean(dst)
		if taken[dst] {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("Duplicate mount point: %s", dst))
		}
		v, err := e.o.Volumes.Create(volume.CreateOptions{Name: name})
		if err != nil {
			return err
		}
		taken[dst] = true
		out = append(out, VolumeMount{Name: v.Name, Destination: dst, ReadOnly: ro, NoCopy: nocopy, Anonymous: v.Anonymous && name == ""})
		return nil
	}
	for _, raw := range hc.Binds {
		b, err := parseBind(raw)
		if err != nil {
			return fail(err)
		}
		if b.volume {
			if err := add(b.src, b.dst, b.ro, b.nocopy); err != nil {
				return fail(err)
			}
		} else {
			taken[filepath.Clean(b.dst)] = true
		}
	}
	for _, m := range hc.Mounts {
		if m.Type != mount.TypeVolume {
			taken[filepath.Clean(m.Target)] = true
			continue
		}
		nocopy := m.VolumeOptions != nil && m.VolumeOptions.NoCopy
		if m.VolumeOptions != nil && m.VolumeOptions.DriverConfig != nil && m.VolumeOptions.DriverConfig.Name != "" && m.VolumeOptions.DriverConfig.Name != "local" {
			return fail(errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("plugin %q not found: berthd has only the local volume driver", m.VolumeOptions.DriverConfig.Name)))
		}
		if err := add(m.Source, m.Target, m.ReadOnly, nocopy); err != nil {
			return fail(err)
		}
	}
	// --volumes-from: the volumes and host binds of other containers, at
	// the same paths, read-only with ":ro"; never removed with this one.
	for _, from := range hc.VolumesFrom {
		ref, mode, _ := strings.Cut(from, ":")
		if mode != "" && mode != "ro" && mode != "rw" {
			return fail(errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid mode for volumes-from: %s", mode)))
		}
		src, err := e.get(ref)
		if err != nil {
			return fail(err)
		}
		e.mu.Lock()
		vols, binds := slices.Clone(src.rec.Volumes), slices.Clone(src.rec.HostConfig.Binds)
		e.mu.Unlock()
		for _, vm := range vols {
			if err := add(vm.Name, vm.Destination, mode == "ro" || mode == "" && vm.ReadOnly, true); err != nil {
				return fail(err)
			}
		}
		for _, raw := range binds {
			b, err := parseBind(raw)
			if err != nil || b.volume || taken[filepath.Clean(b.dst)] {
				continue
			}
			taken[filepath.Clean(b.dst)] = true
			if mode == "ro" && !b.ro {
				raw = b.src + ":" + b.dst + ":ro"
			}
			hc.Binds = append(hc.Binds, raw)
		}
	}
	for dst := range cfg.Volumes {
		if !taken[filepath.Clean(dst)] {
			if err := add("", dst, false, false); err != nil {
				return fail(err)
			}
		}
	}
	return out, nil
}

// removeAnonymous removes a container's anonymous volumes that no other
// container uses.
func (e *Engine) removeAnonymous(vols []VolumeMount) {
	for _, vm := range vols {
		if vm.Anonymous {
			if err := e.o.Volumes.Remove(vm.Name, e.volumeUsers(vm.Name)); err != nil && !errdefs.NotFound(err) {
				e.log.Warn("remove anonymous volume", "volume", vm.Name, "err", err)
			}
		}
	}
}

// volumeUsers names the containers (any state) that mount a volume.
func (e *Engine) volumeUsers(name string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, c := range e.ctrs {
		if slices.ContainsFunc(c.rec.Volumes, func(vm VolumeMount) bool { return vm.Name == name }) {
			out = append(out, c.rec.ID)
		}
	}
	slices.Sort(out)
	return out
}

// RemoveVolume deletes a volume no container uses.
func (e *Engine) RemoveVolume(name string) error {
	return e.o.Volumes.Remove(name, e.volumeUsers(name))
}

// PruneVolumes removes unused volumes: anonymous ones, or all with all.
func (e *Engine) PruneVolumes(all bool) ([]string, uint64, error) {
	vols, err := e.o.Volumes.List()
	if err != nil {
		return nil, 0, err
	}
	var deleted []string
	var space uint64
	for _, v := range vols {
		if !all && !v.Anonymous {
			continue
		}
		size := e.o.Volumes.Size(v)
		if err := e.RemoveVolume(v.Name); err == nil {
			deleted = append(deleted, v.Name)
			space += uint64(size)
		}
	}
	return deleted, space, nil
}

// VolumeRefCount counts the containers using a volume.
func (e *Engine) VolumeRefCount(name string) int { return len(e.volumeUsers(name)) }

// volumeMounts turns a record's volumes into OCI mounts, copying the
// image's content at the destination into an empty directory volume on
// its first use, as docker does.
func (e *Engine) volumeMounts(r *Record, rootPath string) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, vm := range r.Volumes {
		v, err := e.o.Volumes.Get(vm.Name)
		if err != nil {
			return nil, fmt.Errorf("volume %s of container %s: %w", vm.Name, r.ID, err)
		}
		opts := []string{"rbind", "rprivate"}
		if vm.ReadOnly {
			opts = append(opts, "ro")
		}
		switch v.Kind() {
		case "tmpfs":
			topts := []string{"nosuid", "nodev"}
			if o := v.Options["o"]; o != "" {
				topts = append(topts, strings.Split(o, ",")...)
			}
			if vm.ReadOnly {
				topts = append(topts, "ro")
			}
			out = append(out, specs.Mount{Destination: vm.Destination, Type: "tmpfs", Source: "tmpfs", Options: topts})
			continue
		case "dir":
			if err := e.o.Volumes.Ready(v); err != nil {
				return nil, fmt.Errorf("volume %s: %w", v.Name, err)
			}
			idmapped := r.IDMap != nil && e.idmapVolumes()
			if !v.CopiedUp {
				// Without an idmapped mount, a volume's first user owns
				// its root, as the mount point the image had would be
				// owned.
				if !idmapped {
					if err := chownToRoot(r.IDMap, v.Mountpoint); err != nil {
						return nil, fmt.Errorf("volume %s: %w", v.Name, err)
					}
				}
				if !vm.NoCopy {
					if err := copyUp(rootPath, vm.Destination, v.Mountpoint); err != nil {
						return nil, fmt.Errorf("volume %s: copy the image's %s in: %w", v.Name, vm.Destination, err)
					}
					if idmapped {
						// What was copied from the mapped root has host ids.
						if err := storage.ShiftTree(v.Mountpoint, r.IDMap.ToContainer); err != nil {
							return nil, fmt.Errorf("volume %s: %w", v.Name, err)
						}
					}
				}
				if err := e.o.Volumes.MarkCopiedUp(v.Name); err != nil {
					return nil, err
				}
			}
			if idmapped {
				out = append(out, idmappedBind(vm.Destination, v.Mountpoint, opts, *r.IDMap))
				continue
			}
		}
		out = append(out, specs.Mount{Destination: vm.Destination, Type: "bind", Source: v.Mountpoint, Options: opts})
	}
	return out, nil
}

// copyUp copies the directory dst of the root filesystem (resolved inside
// it: a symlink cannot point the copy at the host) into an empty volume
// directory. Nothing to copy, or a volume already holding files, is not an
// error. Links inside are copied as links (cp -a never follows them).
func copyUp(root, dst, volDir string) error {
	if ents, err := os.ReadDir(volDir); err != nil || len(ents) > 0 {
		return err
	}
	fd, err := openInRoot(root, dst)
	if err != nil {
		return nil // nothing there in the image
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	// The descriptor is berthd's: cp reaches it through berthd's /proc.
	src := fmt.Sprintf("/proc/%d/fd/%d/.", os.Getpid(), fd)
	out, err := exec.Command("cp", "-a", "--", src, volDir+"/").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// idmapVolumes: a user-namespaced container's volumes are idmapped
// binds, stored in the container's ids (as a container without a user
// namespace stores them), so containers of different ranges share them.
// A daemon in a user namespace of its own (rootless) may not idmap the
// host's file systems, nor one where layers could not be idmapped: there
// a volume takes its first user's ids.
func (e *Engine) idmapVolumes() bool { return !userns.Nested() && !e.copyLayers }

// idmappedBind is a bind of src whose ids are m's container ids on disk.
func idmappedBind(dst, src string, opts []string, m userns.Mapping) specs.Mount {
	uids, gids := m.Spec()
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: append(slices.Clone(opts), "idmap"), UIDMappings: uids, GIDMappings: gids}
}
