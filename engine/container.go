package engine

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/internal/cleanup"
	"github.com/berth-project/berth/logfile"
	"github.com/berth-project/berth/userns"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	bolt "go.etcd.io/bbolt"
)

// Record is what is stored of a container.
type Record struct {
	ID         string
	Name       string // with docker's leading "/"
	Created    time.Time
	Path       string // the process: Path + Args (entrypoint + cmd)
	Args       []string
	Image      string // the image ID
	Config     *ctypes.Config
	HostConfig *ctypes.HostConfig
	State      State
	// RestartCount counts restarts by the restart policy since the last
	// start by a user.
	RestartCount int
	// Volumes are the named and anonymous volumes mounted in the
	// container, resolved at create.
	Volumes []VolumeMount
	// ManualStop: the user stopped it; "unless-stopped" and "always" do
	// not restart it until it is started again (always does at boot).
	ManualStop bool
	LogOpts    logfile.Options
	// Network is the request's endpoint settings (static address,
	// aliases) by network name or ID.
	Network *network.NetworkingConfig `json:",omitempty"`
	// LeftPrimary: the container was disconnected from the network of
	// its network mode (Compose does so before connecting it again with
	// aliases); it joins only the networks in Network.
	LeftPrimary bool `json:",omitempty"`
	// IDMap is the container's user namespace (nil: the host's), fixed
	// at create; IDMapOwned: the block is the container's own (auto),
	// returned to the pool at remove.
	IDMap      *userns.Mapping `json:",omitempty"`
	IDMapOwned bool            `json:",omitempty"`
	// Namespace sets the container apart from the Docker API's lists:
	// "" for the Docker API's containers, "k8s.io" for those made through
	// the CRI (as containerd's namespaces).
	Namespace string `json:",omitempty"`
	// LogPath is where the container's log is written when not in its
	// directory (a CRI container's, chosen by the kubelet).
	LogPath string `json:",omitempty"`
}

// CreateOptions are what a container is given beyond Docker's config.
type CreateOptions struct {
	// ID is the new container's ID, made by NewID ("": one is made).
	ID        string
	Namespace string // Record.Namespace
	LogPath   string // Record.LogPath
	LogFormat string // logfile.Options.Format
}

// State is a container's run state.
type State struct {
	Status     ctypes.ContainerState // created, running, paused, restarting, exited, dead
	Pid        int
	ExitCode   int
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	// OOMKilled: the kernel's OOM killer killed a process of the last run.
	OOMKilled bool `json:",omitempty"`
	// Health is the health check's state during and after a run; nil
	// without a health check.
	Health *ctypes.Health `json:",omitempty"`
}

// Running reports whether a process is (or may be) alive.
func (s State) Running() bool {
	return s.Status == ctypes.StateRunning || s.Status == ctypes.StatePaused
}

// ctr is a container in memory: its record and the signals around it.
// Fields are guarded by Engine.mu.
type ctr struct {
	rec  Record
	busy string // "starting", "stopping", "removing": a lifecycle step is under way
	// exited is closed when the current run ends (replaced at each start).
	exited chan struct{}
	// removed is closed when the container is gone.
	removed chan struct{}
	// nextStart is closed when the next run begins (replaced at each).
	nextStart chan struct{}
	// attaches wait for the next start.
	attaches []*pendingAttach
	// fifos are berthd's own ends of the container's stdio FIFOs, held
	// open so that a lost monitor loses none of its output (adopt.go).
	fifos        []*os.File
	restartTimer *time.Timer
	// ver counts the records taken (takeRecord, under Engine.mu); stored is the
	// newest one written and gone marks a deleted record (both under
	// Engine.dbMu), so that a late write never goes back in time.
	ver, stored uint64
	gone        bool
}

func newCtr(r Record) *ctr {
	c := &ctr{rec: r, exited: make(chan struct{}), removed: make(chan struct{}), nextStart: make(chan struct{})}
	if !r.State.Running() {
		close(c.exited)
	}
	return c
}

func (e *Engine) load() error {
	return e.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketContainers)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			r, err := decodeRecord(k, v)
			if err != nil {
				// Served without it rather than not at all; berthd verify
				// names it too.
				e.log.Error("skipping a bad container record", "err", err)
				return nil
			}
			e.ctrs[r.ID] = newCtr(r)
			e.names[r.Name] = r.ID
			if r.IDMapOwned && r.IDMap != nil && e.o.Userns.Pool != nil {
				if err := e.o.Userns.Pool.Reserve(r.ID, *r.IDMap); err != nil {
					e.log.Error("container's user namespace range", "id", r.ID, "err", err)
				}
			}
			return nil
		})
	})
}

// decodeRecord reads the record stored under key, refusing one that
// does not describe a container (cut short, or lacking its config).
func decodeRecord(key, raw []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, fmt.Errorf("container record %s: %w", key, err)
	}
	switch {
	case r.ID != string(key):
		return r, fmt.Errorf("container record %s: it names container %q", key, r.ID)
	case r.Config == nil || r.HostConfig == nil:
		return r, fmt.Errorf("container record %s: no config", key)
	case r.Name == "" || r.Path == "" && len(r.Args) == 0:
		return r, fmt.Errorf("container record %s: no name or command", key)
	}
	return r, nil
}

// VerifyRecords checks every container record of the data root offline
// (berthd stopped: the database is locked while it runs) and returns
// what is wrong, one error per bad record.
func VerifyRecords(dataRoot string) ([]error, error) {
	path := filepath.Join(dataRoot, "containers.db")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer db.Close()
	var bad []error
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketContainers)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if _, err := decodeRecord(k, v); err != nil {
				bad = append(bad, err)
			}
			return nil
		})
	})
	return bad, err
}

// recordWrite is a container record taken under e.mu, to be written once
// e.mu is released.
type recordWrite struct {
	c   *ctr
	ver uint64
	raw []byte
	err error
}

// takeRecord takes c's record for a write. Called with e.mu held.
func (e *Engine) takeRecord(c *ctr) recordWrite {
	c.ver++
	raw, err := json.Marshal(c.rec)
	return recordWrite{c: c, ver: c.ver, raw: raw, err: err}
}

// write stores the record unless a newer snapshot of it is stored
// already or the container is deleted. Called without e.mu: the fsync
// holds no one but other writes.
func (e *Engine) write(w recordWrite) error {
	if w.err != nil {
		return w.err
	}
	e.dbMu.Lock()
	defer e.dbMu.Unlock()
	if w.c.gone || w.c.stored >= w.ver {
		return nil
	}
	err := e.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContainers).Put([]byte(w.c.rec.ID), w.raw)
	})
	if err == nil {
		w.c.stored = w.ver
	}
	return err
}

// save writes c's record at once, for the rare changes made with e.mu
// held to the end (rename). Called with e.mu held.
func (e *Engine) save(c *ctr) error { return e.write(e.takeRecord(c)) }

// deleteRecord removes c's record for good: no write of an older
// snapshot may bring it back.
func (e *Engine) deleteRecord(c *ctr) error {
	e.dbMu.Lock()
	defer e.dbMu.Unlock()
	err := e.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketContainers).Delete([]byte(c.rec.ID)) })
	if err == nil {
		c.gone = true
	}
	return err
}

// saveState updates c's state and writes it.
func (e *Engine) saveState(c *ctr, f func(r *Record)) error {
	e.mu.Lock()
	f(&c.rec)
	w := e.takeRecord(c)
	e.mu.Unlock()
	return e.write(w)
}

// lookup finds a container by full id, name, or unique id prefix, as
// docker does; it never returns a nil container without an error. Called
// with e.mu held.
func (e *Engine) lookup(ref string) (*ctr, error) {
	if c := e.ctrs[ref]; c != nil {
		return c, nil
	}
	if id, ok := e.names["/"+strings.TrimPrefix(ref, "/")]; ok {
		if c := e.ctrs[id]; c != nil {
			return c, nil
		}
		// The name is reserved by a create still in progress: there is
		// no container yet.
		return nil, errdefs.New(errdefs.ErrNotFound, "No such container: "+ref)
	}
	var found *ctr
	if ref != "" {
		for id, c := range e.ctrs {
			if strings.HasPrefix(id, ref) {
				if found != nil {
					return nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("multiple IDs found with provided prefix: %s", ref))
				}
				found = c
			}
		}
	}
	if found == nil {
		return nil, errdefs.New(errdefs.ErrNotFound, "No such container: "+ref)
	}
	return found, nil
}

func (e *Engine) get(ref string) (*ctr, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lookup(ref)
}

// withCtr finds the container ref names and runs f with the engine lock
// held. The lock is released however f ends, a panic included: one failed
// request never wedges the daemon.
func (e *Engine) withCtr(ref string, f func(c *ctr) error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	return f(c)
}

// claimStopped marks a container that is not running busy with what
// (its writable layer is about to be mounted outside a run), refusing one
// already busy. A running one is left as it is. Called with e.mu held.
func (e *Engine) claimStopped(c *ctr, running bool, what string) error {
	if running {
		return nil
	}
	if c.busy != "" {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s is %s", c.rec.ID, c.busy))
	}
	c.busy = what
	return nil
}

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// reserveName claims name (or a generated one) for id. Called with e.mu.
func (e *Engine) reserveName(name, id string) (string, error) {
	if name == "" {
		for {
			name = "/" + randomName()
			if _, taken := e.names[name]; !taken {
				break
			}
		}
	} else {
		if !validName.MatchString(name) {
			return "", errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
		}
		name = "/" + strings.TrimPrefix(name, "/")
		if other, taken := e.names[name]; taken {
			return "", errdefs.New(errdefs.ErrConflict, fmt.Sprintf("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", name, other))
		}
	}
	e.names[name] = id
	return name, nil
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewID makes a container ID (64 hex digits), for CreateOptions.ID.
func NewID() string { return newID() }

var validID = regexp.MustCompile(`^[0-9a-f]{64}$`)

// CreateResult is what Create reports.
type CreateResult struct {
	ID       string
	Warnings []string
}

// Create makes a container record and its writable layer from an image
// and the user's config. Nothing runs until Start. On error nothing is
// left: no record, name, layer or directory.
func (e *Engine) Create(name string, cfg *ctypes.Config, hc *ctypes.HostConfig, nc *network.NetworkingConfig) (CreateResult, error) {
	return e.CreateWith(name, cfg, hc, nc, CreateOptions{})
}

// CreateWith is Create with options beyond Docker's.
func (e *Engine) CreateWith(name string, cfg *ctypes.Config, hc *ctypes.HostConfig, nc *network.NetworkingConfig, o CreateOptions) (CreateResult, error) {
	if cfg == nil || cfg.Image == "" {
		return CreateResult{}, errdefs.New(errdefs.ErrInvalid, "config: no image given")
	}
	if hc == nil {
		hc = &ctypes.HostConfig{}
	}
	warnings, err := validateHostConfig(hc)
	if err != nil {
		return CreateResult{}, err
	}
	if err := checkHealthConfig(cfg.Healthcheck); err != nil {
		return CreateResult{}, err
	}
	netWarnings, err := e.checkNetwork(hc, nc)
	if err != nil {
		return CreateResult{}, err
	}
	if err := checkBandwidth(cfg, hc); err != nil {
		return CreateResult{}, err
	}
	warnings = append(warnings, netWarnings...)
	logOpts, err := logOptions(&hc.LogConfig)
	if err != nil {
		return CreateResult{}, err
	}
	logOpts.Format = o.LogFormat
	img, err := e.o.Images.Get(cfg.Image)
	if err != nil {
		if errdefs.NotFound(err) {
			return CreateResult{}, errdefs.New(errdefs.ErrNotFound, "No such image: "+cfg.Image)
		}
		return CreateResult{}, err
	}
	id := o.ID
	if id == "" {
		id = newID()
	} else if !validID.MatchString(id) {
		return CreateResult{}, errdefs.New(errdefs.ErrInvalid, "container ID "+id+": want 64 lowercase hex digits")
	}
	e.mu.Lock()
	if _, taken := e.ctrs[id]; taken {
		e.mu.Unlock()
		return CreateResult{}, errdefs.New(errdefs.ErrConflict, "container ID "+id+" is taken")
	}
	name, err = e.reserveName(name, id)
	e.mu.Unlock()
	if err != nil {
		return CreateResult{}, err
	}
	var cu cleanup.Cleanup
	defer cu.Run()
	cu.Add(func() {
		e.mu.Lock()
		delete(e.names, name)
		e.mu.Unlock()
	})

	d := image.RuntimeDefaults(img.Config.Config.ImageConfig, image.Overrides{
		Entrypoint: entrypointOverride(cfg.Entrypoint), Cmd: cfg.Cmd, Env: cfg.Env,
		WorkingDir: cfg.WorkingDir, User: cfg.User,
	})
	if len(d.Args) == 0 {
		return CreateResult{}, errdefs.New(errdefs.ErrInvalid, "No command specified")
	}
	final := *cfg
	final.Env = d.Env
	final.WorkingDir = d.Cwd
	final.User = d.User
	if final.Entrypoint == nil && len(img.Config.Config.Entrypoint) > 0 {
		final.Entrypoint = img.Config.Config.Entrypoint
	}
	if final.Cmd == nil && cfg.Entrypoint == nil {
		final.Cmd = img.Config.Config.Cmd
	}
	if final.StopSignal == "" {
		final.StopSignal = d.StopSignal
	}
	final.Labels = mergeLabels(d.Labels, cfg.Labels)
	final.Healthcheck = mergeHealth(cfg.Healthcheck, img.Config.Config.Healthcheck)
	if final.Hostname == "" {
		final.Hostname = id[:12]
		if hc.NetworkMode == "host" {
			// As dockerd: a host-network container is named as the host.
			if h, err := os.Hostname(); err == nil {
				final.Hostname = h
			}
		}
	}
	if len(final.ExposedPorts) == 0 && len(img.Config.Config.ExposedPorts) > 0 {
		final.ExposedPorts = exposed(d.ExposedPorts)
	}
	if len(d.Volumes) > 0 {
		// The image's volumes and the config's, as dockerd merges them.
		final.Volumes = maps.Clone(cfg.Volumes)
		if final.Volumes == nil {
			final.Volumes = map[string]struct{}{}
		}
		for _, v := range d.Volumes {
			final.Volumes[v] = struct{}{}
		}
	}
	if hc.NetworkMode == "" || hc.NetworkMode == "default" {
		hc.NetworkMode = "bridge"
	}

	idmap, ownIDs, err := e.assignUserns(id, hc)
	if err != nil {
		return CreateResult{}, err
	}
	if ownIDs {
		cu.Add(func() { e.o.Userns.Pool.Free(id) })
	}
	dir := filepath.Join(e.o.DataRoot, "containers", id)
	if err := os.Mkdir(dir, 0o710); err != nil {
		return CreateResult{}, err
	}
	cu.Add(func() { os.RemoveAll(dir) })
	size, _ := storageSize(hc) // validated above
	if _, err := e.o.Images.PrepareRootfsSized(id, img.ID.String(), size); err != nil {
		return CreateResult{}, err
	}
	cu.Add(func() { _ = e.o.Images.RemoveRootfs(id) })

	vols, err := e.createVolumes(&final, hc)
	if err != nil {
		return CreateResult{}, err
	}
	cu.Add(func() { e.removeAnonymous(vols) })
	rec := Record{
		Volumes: vols,
		ID:      id, Name: name, Created: time.Now().UTC(), Path: d.Args[0], Args: d.Args[1:],
		Image: img.ID.String(), Config: &final, HostConfig: hc,
		State:   State{Status: ctypes.StateCreated},
		LogOpts: logOpts, Network: nc,
		IDMap: idmap, IDMapOwned: ownIDs,
		Namespace: o.Namespace, LogPath: o.LogPath,
	}
	c := newCtr(rec)
	// Not yet known to anyone: written before it is.
	err = e.write(e.takeRecord(c))
	if err == nil {
		e.mu.Lock()
		e.ctrs[id] = c
		e.mu.Unlock()
	}
	if err != nil {
		return CreateResult{}, err
	}
	cu.Release()
	e.emit(c, events.ActionCreate, nil)
	return CreateResult{ID: id, Warnings: warnings}, nil
}

// entrypointOverride: docker sends [""] to clear the image's entrypoint
// (--entrypoint ""); nil keeps it.
func entrypointOverride(ep []string) []string {
	if ep == nil {
		return nil
	}
	if len(ep) == 1 && ep[0] == "" {
		return []string{}
	}
	return ep
}

func mergeLabels(image, user map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range image {
		out[k] = v
	}
	for k, v := range user {
		out[k] = v
	}
	return out
}

func (e *Engine) containerDir(id string) string {
	return filepath.Join(e.o.DataRoot, "containers", id)
}

func (e *Engine) bundleDir(id string) string {
	return filepath.Join(e.o.ExecRoot, "containers", id)
}

func (e *Engine) logPath(id string) string {
	return filepath.Join(e.containerDir(id), id+"-json.log")
}

// recLogPath is where r's log is written.
func (e *Engine) recLogPath(r Record) string {
	if r.LogPath != "" {
		return r.LogPath
	}
	return e.logPath(r.ID)
}

// Record is a copy of a container's record.
func (e *Engine) Record(ref string) (Record, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.lookup(ref)
	if err != nil {
		return Record{}, err
	}
	return c.rec, nil
}

// Records copies the records of the containers of namespace ns.
func (e *Engine) Records(ns string) []Record {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Record
	for _, c := range e.ctrs {
		if c.rec.Namespace == ns {
			out = append(out, c.rec)
		}
	}
	return out
}

// The logging drivers berthd has. "local" keeps json-file's format
// with dockerd's local defaults (see logfile.ParseOptions); "none" keeps
// nothing.
const (
	LogDriverJSON  = "json-file"
	LogDriverLocal = "local"
	LogDriverNone  = "none"
)

// logOptions checks lc, filling in the default driver as dockerd does.
func logOptions(lc *ctypes.LogConfig) (logfile.Options, error) {
	switch lc.Type {
	case "":
		lc.Type = LogDriverJSON
	case LogDriverJSON, LogDriverLocal:
	case LogDriverNone:
		for k := range lc.Config {
			return logfile.Options{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("unknown log opt '%s' for none log driver", k))
		}
		return logfile.Options{}, nil
	default:
		return logfile.Options{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("logger: no log driver named '%s' is registered (berthd has json-file, local and none)", lc.Type))
	}
	o, err := logfile.ParseOptions(lc.Type, lc.Config)
	if err != nil {
		return o, errdefs.New(errdefs.ErrInvalid, err.Error())
	}
	return o, nil
}

// Rename gives a container a new name.
func (e *Engine) Rename(ref, newName string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.lookup(ref)
	if err != nil {
		return err
	}
	old := c.rec.Name
	if "/"+strings.TrimPrefix(newName, "/") == old {
		return errdefs.New(errdefs.ErrInvalid, "Renaming a container with the same name as its current name")
	}
	name, err := e.reserveName(newName, c.rec.ID)
	if err != nil {
		return err
	}
	c.rec.Name = name
	if err := e.save(c); err != nil {
		c.rec.Name = old
		delete(e.names, name)
		return err
	}
	delete(e.names, old)
	go e.emit(c, events.ActionRename, map[string]string{"oldName": old})
	return nil
}
