// Package volume keeps named volumes: directories under
// <data-root>/volumes/<name>/_data (docker's layout) with their metadata in
// <name>/volume.json, written atomically. Only the `local` driver exists;
// its options are docker's: none (a directory), or type=tmpfs with o=…
// (a tmpfs mounted at each use), or o=bind with device=/host/path; and
// size= (Berth's) limits a directory volume, through storage/quota.
//
// The store does not know which containers use a volume: the engine asks
// before removing (see Remove's inUse).
//
// Concurrency: a Store is safe for concurrent use.
package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/logfile"
	"github.com/berth-project/berth/storage/quota"
)

// Volume is one named volume.
type Volume struct {
	Name      string
	Driver    string // "local"
	CreatedAt time.Time
	Labels    map[string]string
	Options   map[string]string // driver options: type, o, device
	// Anonymous volumes are made for a container (image VOLUME or -v /path)
	// and removed with it by `rm -v`.
	Anonymous bool
	// CopiedUp: image content was copied in on first use (or the volume
	// was used non-empty), so it is never copied again.
	CopiedUp bool
	// Mountpoint is the host directory (for a tmpfs volume: none).
	Mountpoint string `json:"-"`
}

// Kind says how a volume is mounted into a container.
func (v *Volume) Kind() string {
	if v.Options["type"] == "tmpfs" {
		return "tmpfs"
	}
	if slices.Contains(strings.Split(v.Options["o"], ","), "bind") {
		return "bind"
	}
	return "dir"
}

// Store holds the volumes of one data root.
type Store struct {
	root  string
	quota quota.Backend // for size= volumes, chosen at Open
	mu    sync.Mutex
}

// Open opens (creating) the volume directory under dataRoot.
func Open(dataRoot string) (*Store, error) {
	root := filepath.Join(dataRoot, "volumes")
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, err
	}
	return &Store{root: root, quota: quota.Detect(root)}, nil
}

// QuotaBackend names how size= volumes are limited on this host.
func (s *Store) QuotaBackend() string { return s.quota.Name() }

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// CreateOptions are docker's volume create request.
type CreateOptions struct {
	Name      string // "" makes an anonymous volume with a random name
	Driver    string
	Labels    map[string]string
	Options   map[string]string
	Anonymous bool
}

// Create makes a volume, or returns the existing one of that name (as
// docker does) when the options agree.
func (s *Store) Create(o CreateOptions) (*Volume, error) {
	if o.Driver != "" && o.Driver != "local" {
		return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("plugin %q not found: berthd has only the local volume driver", o.Driver))
	}
	if err := checkOptions(o.Options); err != nil {
		return nil, err
	}
	if o.Name == "" {
		b := make([]byte, 32)
		rand.Read(b)
		o.Name = hex.EncodeToString(b)
		o.Anonymous = true
	}
	if !validName.MatchString(o.Name) {
		return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("create %s: %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", o.Name, o.Name))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, err := s.load(o.Name); err == nil {
		if len(o.Options) > 0 && !maps.Equal(o.Options, v.Options) {
			return nil, errdefs.New(errdefs.ErrConflict, fmt.Sprintf("volume %s already exists with other options", o.Name))
		}
		return v, nil
	}
	dir := filepath.Join(s.root, o.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "_data")
	if sz := o.Options["size"]; sz != "" {
		n, _ := logfile.ParseSize(sz) // checked above
		if err := s.quota.Create(data, n); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	} else if err := os.Mkdir(data, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	v := &Volume{
		Name: o.Name, Driver: "local", CreatedAt: time.Now().UTC().Truncate(time.Second),
		Labels: o.Labels, Options: o.Options, Anonymous: o.Anonymous,
	}
	if v.Labels == nil {
		v.Labels = map[string]string{}
	}
	if v.Options == nil {
		v.Options = map[string]string{}
	}
	if err := s.save(v); err != nil {
		quota.Remove(data)
		os.RemoveAll(dir)
		return nil, err
	}
	v.Mountpoint = s.mountpoint(v)
	return v, nil
}

// checkOptions accepts docker's local driver options that berthd honours.
func checkOptions(opts map[string]string) error {
	for k, v := range opts {
		switch k {
		case "type", "o", "device":
		case "size":
			n, err := logfile.ParseSize(v)
			if err != nil || n <= 0 {
				return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid volume option size=%q: want a size such as 512m or 10G", v))
			}
			if n < quota.MinSize {
				return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("volume option size=%s is below the smallest quota, %dMB", v, quota.MinSize>>20))
			}
			if opts["type"] != "" || opts["o"] != "" {
				return errdefs.New(errdefs.ErrInvalid, "volume option size= applies to a plain volume, not with type= or o=")
			}
		default:
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid option: %q", k))
		}
	}
	switch t := opts["type"]; {
	case t == "", t == "tmpfs", t == "none" && opts["device"] != "":
	default:
		return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("volume type %q is not supported (tmpfs, or o=bind with device=)", t))
	}
	if slices.Contains(strings.Split(opts["o"], ","), "bind") {
		if !filepath.IsAbs(opts["device"]) {
			return errdefs.New(errdefs.ErrInvalid, "a bind volume needs device=/absolute/host/path")
		}
		if _, err := os.Stat(opts["device"]); err != nil {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("bind volume device %s: %v", opts["device"], err))
		}
	}
	return nil
}

func (s *Store) mountpoint(v *Volume) string {
	switch v.Kind() {
	case "bind":
		return v.Options["device"]
	case "tmpfs":
		return ""
	}
	return filepath.Join(s.root, v.Name, "_data")
}

func (s *Store) save(v *Volume) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dir := filepath.Join(s.root, v.Name)
	tmp := filepath.Join(dir, ".volume.json.tmp")
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "volume.json"))
}

func (s *Store) load(name string) (*Volume, error) {
	raw, err := os.ReadFile(filepath.Join(s.root, name, "volume.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("get %s: no such volume", name))
	}
	if err != nil {
		return nil, err
	}
	var v Volume
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	v.Mountpoint = s.mountpoint(&v)
	return &v, nil
}

// Get returns a volume by name.
func (s *Store) Get(name string) (*Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.load(name)
}

// MarkCopiedUp records that a volume's first use is over.
func (s *Store) MarkCopiedUp(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.load(name)
	if err != nil {
		return err
	}
	v.CopiedUp = true
	return s.save(v)
}

// List returns every volume, by name.
func (s *Store) List() ([]*Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, err
	}
	var out []*Volume
	for _, e := range ents {
		if v, err := s.load(e.Name()); err == nil {
			out = append(out, v)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Remove deletes a volume and its data. inUse names the containers using
// it; a volume in use is refused (docker's message), even with force.
func (s *Store) Remove(name string, inUse []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.load(name); err != nil {
		return err
	}
	if len(inUse) > 0 {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("remove %s: volume is in use - [%s]", name, strings.Join(inUse, ", ")))
	}
	if err := quota.Remove(filepath.Join(s.root, name, "_data")); err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	return os.RemoveAll(filepath.Join(s.root, name))
}

// Ready makes a volume usable: a size-limited one is made ready by its
// quota backend (a loop image mounted again after a reboot).
func (s *Store) Ready(v *Volume) error {
	return quota.Ready(filepath.Join(s.root, v.Name, "_data"))
}

// Size is the bytes of the files in a directory volume (0 for others).
func (s *Store) Size(v *Volume) int64 {
	if v.Kind() != "dir" {
		return 0
	}
	var n int64
	filepath.WalkDir(v.Mountpoint, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
