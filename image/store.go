// Package image is Berth's image store: pulling from OCI registries, the
// content-addressed blobs (image/content), unpacked layers and container
// root filesystems (storage), and the metadata that ties them together —
// which name points at which image, which container uses which image — in
// a bbolt database.
//
// An image's ID is the digest of its config, as in Docker.
//
// Contract: every metadata change is one bbolt transaction, written after
// the blobs and layers it names are committed. A crash can leave blobs or
// layers nobody names (Prune collects them), never a name pointing at
// something missing. One process owns a data root at a time (a lock file);
// within it the Store is safe for concurrent use.
package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sync/singleflight"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/image/content"
	"github.com/berth-project/berth/storage"
	"github.com/berth-project/berth/storage/unpack"
	"github.com/berth-project/berth/userns"
)

// Options configure a Store.
type Options struct {
	// Root is the data root; the store uses content/, storage/ and
	// metadata.db under it.
	Root string
	// InsecureRegistries are registry hosts ("host:port") spoken to over
	// plain HTTP. localhost and 127.0.0.0/8 always are.
	InsecureRegistries []string
	// Keychain finds credentials for a registry when a pull names none;
	// nil means Docker's config.json ($DOCKER_CONFIG, ~/.docker).
	Keychain authn.Keychain
	// Transport is the HTTP transport for registries; nil means the default.
	Transport http.RoundTripper
	// Unpack limits what layers may contain.
	Unpack unpack.Options
	// Platform is the default platform picked from image indexes; empty
	// means linux and this machine's architecture.
	Platform v1.Platform
	// StorageDriver mounts rootfs overlays: storage.Overlay,
	// storage.FuseOverlayfs, or "" for the kernel's overlayfs unless it
	// is refused here (storage.Snapshotter.SetDriver).
	StorageDriver string
}

// Store is the image store on one data root.
type Store struct {
	opts    Options
	db      *bolt.DB
	lock    *os.File
	content *content.Store
	snaps   *storage.Snapshotter

	// gcMu orders the deleters: Remove, Prune and the sweep a lease's
	// release may make. Nothing that adds or uses content takes it; that
	// content is pinned instead (lease.go).
	gcMu    sync.Mutex
	pins    pinTable
	flights singleflight.Group
}

var (
	bucketImages = []byte("images") // image ID → imageRecord
	bucketTags   = []byte("tags")   // full name (repo:tag or repo@digest) → image ID
	bucketRootfs = []byte("rootfs") // container rootfs key → image ID
)

// buckets are every bucket the metadata store has.
var buckets = [][]byte{bucketImages, bucketTags, bucketRootfs, bucketBuildCache}

// layerRecord is one layer of an image.
type layerRecord struct {
	Digest    digest.Digest `json:"digest"` // of the blob as stored (compressed)
	DiffID    digest.Digest `json:"diffID"` // of the uncompressed tar
	Size      int64         `json:"size"`   // of the blob
	MediaType string        `json:"mediaType"`
	Unpacked  int64         `json:"unpacked"` // bytes of file content
}

// imageRecord is what the metadata store keeps per image ID.
type imageRecord struct {
	Manifest    digest.Digest `json:"manifest"`
	MediaType   string        `json:"mediaType"`
	Layers      []layerRecord `json:"layers"`
	RepoDigests []string      `json:"repoDigests,omitempty"`
	Added       time.Time     `json:"added"`
	// Parent is the image this one was committed on (build steps, docker
	// commit); empty for pulled and loaded images.
	Parent digest.Digest `json:"parent,omitempty"`
}

// Image is an image as callers see it.
type Image struct {
	ID          digest.Digest
	RepoTags    []string // full names, "docker.io/library/busybox:latest"
	RepoDigests []string // full names, "docker.io/library/busybox@sha256:…"
	Manifest    digest.Digest
	MediaType   string
	Layers      []Layer
	Config      dockerspec.DockerOCIImage
	// Size is the bytes of file content in all layers, as docker's Size.
	Size  int64
	Added time.Time
	// Parent is the image this one was committed on, if any.
	Parent digest.Digest
	// Children counts the images committed on this one (set by List).
	Children int
}

// Layer is one layer of an image, base first.
type Layer struct {
	Digest    digest.Digest
	DiffID    digest.Digest
	Size      int64
	MediaType string
	// Unpacked is the bytes of file content the layer holds (docker
	// history's SIZE).
	Unpacked int64
}

// Open opens (creating if needed) the store on opts.Root and takes its lock.
func Open(opts Options) (*Store, error) {
	if opts.Root == "" {
		return nil, fmt.Errorf("image store: no data root given: %w", errdefs.ErrInvalid)
	}
	if opts.Platform.OS == "" {
		opts.Platform = v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	}
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	if err := os.MkdirAll(opts.Root, 0o711); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(opts.Root, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("data root %s is in use by another process: %w", opts.Root, errdefs.ErrConflict)
	}
	s := &Store{opts: opts, lock: lock}
	ok := false
	defer func() {
		if !ok {
			s.Close()
		}
	}()
	if s.content, err = content.Open(filepath.Join(opts.Root, "content")); err != nil {
		return nil, err
	}
	if s.snaps, err = storage.Open(filepath.Join(opts.Root, "storage")); err != nil {
		return nil, err
	}
	if _, err := s.snaps.SetDriver(opts.StorageDriver); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(s.tmpDir()); err != nil {
		return nil, err
	}
	if err := os.Mkdir(s.tmpDir(), 0o700); err != nil {
		return nil, err
	}
	if s.db, err = bolt.Open(filepath.Join(opts.Root, "metadata.db"), 0o600, &bolt.Options{Timeout: time.Second}); err != nil {
		return nil, fmt.Errorf("metadata store: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// Close releases the database and the data root's lock.
func (s *Store) Close() error {
	var err error
	if s.db != nil {
		err = s.db.Close()
	}
	s.lock.Close()
	return err
}

// tmpDir holds archives being loaded; Open empties it.
func (s *Store) tmpDir() string { return filepath.Join(s.opts.Root, "tmp") }

// Content is the blob store, for readers such as save.
func (s *Store) Content() *content.Store { return s.content }

func loadRecord(tx *bolt.Tx, id digest.Digest) (*imageRecord, error) {
	b := tx.Bucket(bucketImages).Get([]byte(id))
	if b == nil {
		return nil, fmt.Errorf("image %s: %w", id, errdefs.ErrNotFound)
	}
	var r imageRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("image %s: metadata: %w", id, err)
	}
	return &r, nil
}

func putRecord(tx *bolt.Tx, id digest.Digest, r *imageRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketImages).Put([]byte(id), b)
}

// resolve finds the image ID a user's reference names: a full or short
// ID (hex prefix of at least 4, with or without "sha256:"), or a name with
// tag or digest.
func (s *Store) resolve(tx *bolt.Tx, ref string) (digest.Digest, error) {
	hex := strings.TrimPrefix(ref, "sha256:")
	if len(hex) >= 4 && len(hex) <= 64 && strings.Trim(hex, "0123456789abcdef") == "" {
		var found []digest.Digest
		c := tx.Bucket(bucketImages).Cursor()
		prefix := []byte("sha256:" + hex)
		for k, _ := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, _ = c.Next() {
			found = append(found, digest.Digest(k))
		}
		if len(found) == 1 {
			return found[0], nil
		}
		if len(found) > 1 {
			return "", fmt.Errorf("image ID prefix %q is ambiguous: %w", ref, errdefs.ErrInvalid)
		}
	}
	r, err := parseRef(ref, nil)
	if err != nil {
		return "", err
	}
	full := fullName(r)
	if id := tx.Bucket(bucketTags).Get([]byte(full)); id != nil {
		return digest.Digest(id), nil
	}
	// name@digest also matches an image pulled by tag whose manifest (or
	// index) has that digest.
	if strings.Contains(full, "@") {
		var hit digest.Digest
		err := tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			var rec imageRecord
			if json.Unmarshal(v, &rec) == nil && slices.Contains(rec.RepoDigests, full) {
				hit = digest.Digest(k)
			}
			return nil
		})
		if err == nil && hit != "" {
			return hit, nil
		}
	}
	return "", fmt.Errorf("no such image: %s: %w", ref, errdefs.ErrNotFound)
}

func tagsOf(tx *bolt.Tx, id digest.Digest) []string {
	var tags []string
	tx.Bucket(bucketTags).ForEach(func(k, v []byte) error {
		if string(v) == string(id) && !strings.Contains(string(k), "@") {
			tags = append(tags, string(k))
		}
		return nil
	})
	sort.Strings(tags)
	return tags
}

func (s *Store) toImage(tx *bolt.Tx, id digest.Digest, r *imageRecord) (*Image, error) {
	raw, err := s.content.ReadAll(id)
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", id, err)
	}
	img := &Image{ID: id, RepoTags: tagsOf(tx, id), RepoDigests: r.RepoDigests, Manifest: r.Manifest, MediaType: r.MediaType, Added: r.Added, Parent: r.Parent}
	if err := json.Unmarshal(raw, &img.Config); err != nil {
		return nil, fmt.Errorf("image %s: config: %w", id, err)
	}
	for _, l := range r.Layers {
		img.Layers = append(img.Layers, Layer(l))
		img.Size += l.Unpacked
	}
	return img, nil
}

// Get returns the image a reference or ID names.
func (s *Store) Get(ref string) (*Image, error) {
	var img *Image
	err := s.db.View(func(tx *bolt.Tx) error {
		id, err := s.resolve(tx, ref)
		if err != nil {
			return err
		}
		r, err := loadRecord(tx, id)
		if err != nil {
			return err
		}
		img, err = s.toImage(tx, id, r)
		return err
	})
	return img, err
}

// RawConfig returns the image config exactly as stored.
func (s *Store) RawConfig(id digest.Digest) ([]byte, error) { return s.content.ReadAll(id) }

// List returns every image, newest first.
func (s *Store) List() ([]*Image, error) {
	var out []*Image
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketImages).ForEach(func(k, _ []byte) error {
			r, err := loadRecord(tx, digest.Digest(k))
			if err != nil {
				return err
			}
			img, err := s.toImage(tx, digest.Digest(k), r)
			if err != nil {
				return err
			}
			out = append(out, img)
			return nil
		})
	})
	kids := map[digest.Digest]int{}
	for _, img := range out {
		if img.Parent != "" {
			kids[img.Parent]++
		}
	}
	for _, img := range out {
		img.Children = kids[img.ID]
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Added.After(out[j].Added) })
	return out, err
}

// Tag points target (a name, with or without tag) at the image src names.
func (s *Store) Tag(src, target string) error {
	t, err := parseRef(target, nil)
	if err != nil {
		return err
	}
	if strings.Contains(fullName(t), "@") {
		return fmt.Errorf("tag %q: a tag cannot be a digest: %w", target, errdefs.ErrInvalid)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		id, err := s.resolve(tx, src)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketTags).Put([]byte(fullName(t)), []byte(id))
	})
}

// RemoveResult says what Remove did, in docker's terms.
type RemoveResult struct {
	Untagged []string
	Deleted  []digest.Digest
}

// Remove removes a name, or an image with all its names. As docker's rmi:
// a name of an image with other names only untags; an image used by a
// container rootfs is refused unless force, which then only untags; an
// image with several names given by ID is refused unless force.
func (s *Store) Remove(ref string, force bool) (*RemoveResult, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	res := &RemoveResult{}
	var deleted bool
	err := s.db.Update(func(tx *bolt.Tx) error {
		id, err := s.resolve(tx, ref)
		if err != nil {
			return err
		}
		tags := tagsOf(tx, id)
		byName := !strings.HasPrefix(id.Encoded(), strings.TrimPrefix(ref, "sha256:"))
		hasChildren := len(children(tx, id)) > 0
		if hasChildren && !(byName && len(tags) == 1) {
			if byName {
				r, _ := parseRef(ref, nil)
				full := fullName(r)
				res.Untagged = append(res.Untagged, full)
				return tx.Bucket(bucketTags).Delete([]byte(full))
			}
			return errHasChildren(id)
		}
		if byName && (len(tags) > 1 || hasChildren) {
			r, _ := parseRef(ref, nil)
			full := fullName(r)
			res.Untagged = append(res.Untagged, full)
			return tx.Bucket(bucketTags).Delete([]byte(full))
		}
		if !byName && len(tags) > 1 && !force {
			return fmt.Errorf("unable to delete %s (must be forced) - image is referenced in multiple repositories: %w", id.Encoded()[:12], errdefs.ErrConflict)
		}
		if users := rootfsUsers(tx, id); len(users) > 0 {
			if !force {
				return fmt.Errorf("unable to remove image %s: image is being used by container %s: %w", ref, users[0], errdefs.ErrConflict)
			}
			for _, t := range tags {
				res.Untagged = append(res.Untagged, t)
				tx.Bucket(bucketTags).Delete([]byte(t))
			}
			return nil
		}
		rec, err := loadRecord(tx, id)
		if err != nil {
			return err
		}
		if err := dropImage(tx, id, res); err != nil {
			return err
		}
		deleted = true
		return dropParents(tx, rec.Parent, res)
	})
	if err != nil {
		return nil, err
	}
	if deleted {
		if _, err := s.collect(); err != nil {
			return res, err
		}
	}
	return res, nil
}

// dropImage deletes an image record and every name pointing at it.
func dropImage(tx *bolt.Tx, id digest.Digest, res *RemoveResult) error {
	var names [][]byte
	tx.Bucket(bucketTags).ForEach(func(k, v []byte) error {
		if string(v) == string(id) {
			names = append(names, slices.Clone(k))
		}
		return nil
	})
	for _, k := range names {
		if !strings.Contains(string(k), "@") {
			res.Untagged = append(res.Untagged, string(k))
		}
		if err := tx.Bucket(bucketTags).Delete(k); err != nil {
			return err
		}
	}
	res.Deleted = append(res.Deleted, id)
	if err := dropCacheOf(tx, id); err != nil {
		return err
	}
	return tx.Bucket(bucketImages).Delete([]byte(id))
}

func rootfsUsers(tx *bolt.Tx, id digest.Digest) []string {
	var keys []string
	tx.Bucket(bucketRootfs).ForEach(func(k, v []byte) error {
		if string(v) == string(id) {
			keys = append(keys, string(k))
		}
		return nil
	})
	return keys
}

// PruneResult says what Prune removed.
type PruneResult struct {
	Deleted   []digest.Digest
	Untagged  []string
	Reclaimed int64 // bytes of blobs and unpacked layers removed
}

// Prune removes images no container rootfs uses — only the untagged
// ("dangling") ones unless all — and then every blob and unpacked layer no
// image or rootfs names.
func (s *Store) Prune(all bool) (*PruneResult, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	res := &RemoveResult{}
	err := s.db.Update(func(tx *bolt.Tx) error {
		// Rounds, leaves first: an image others are committed on goes
		// once they have gone.
		for {
			var ids []digest.Digest
			kids := childCounts(tx)
			tx.Bucket(bucketImages).ForEach(func(k, _ []byte) error {
				id := digest.Digest(k)
				if len(rootfsUsers(tx, id)) == 0 && (all || len(tagsOf(tx, id)) == 0) && kids[id] == 0 {
					ids = append(ids, id)
				}
				return nil
			})
			if len(ids) == 0 {
				return nil
			}
			for _, id := range ids {
				if err := dropImage(tx, id, res); err != nil {
					return err
				}
			}
		}
	})
	if err != nil {
		return nil, err
	}
	n, err := s.collect()
	return &PruneResult{Deleted: res.Deleted, Untagged: res.Untagged, Reclaimed: n}, err
}

// collect removes blobs and unpacked layers that no image and no rootfs
// names and no lease pins. The caller holds s.gcMu.
func (s *Store) collect() (int64, error) {
	s.pins.mu.Lock()
	defer s.pins.mu.Unlock()
	s.pins.kept = nil
	blobs := map[digest.Digest]bool{}
	layers := map[digest.Digest]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			var r imageRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			blobs[digest.Digest(k)] = true
			blobs[r.Manifest] = true
			for _, rd := range r.RepoDigests {
				if _, d, ok := strings.Cut(rd, "@"); ok {
					blobs[digest.Digest(d)] = true
				}
			}
			for _, l := range r.Layers {
				blobs[l.Digest] = true
				layers[l.DiffID] = true
			}
			return nil
		})
	})
	if err != nil {
		return 0, err
	}
	// Layers under a container's rootfs stay even if its image went. A
	// rootfs being made or removed meanwhile may have no lower file: its
	// layers are pinned, or no longer needed.
	keys, err := s.snaps.Snapshots()
	if err != nil {
		return 0, err
	}
	for _, k := range keys {
		lower, err := s.snaps.Lower(k)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		for _, l := range lower {
			layers[l] = true
		}
	}
	var reclaimed int64
	var errs []error
	err = s.content.Walk(func(d digest.Digest, size int64) error {
		if !blobs[d] && !s.pins.pinned(d) {
			if err := s.content.Delete(d); err != nil {
				errs = append(errs, err)
			} else {
				reclaimed += size
			}
		}
		return nil
	})
	if err != nil {
		return reclaimed, err
	}
	all, err := s.snaps.Layers()
	if err != nil {
		return reclaimed, err
	}
	for _, l := range all {
		if layers[l] || s.pins.pinned(l) {
			continue
		}
		n, _ := storage.DirSize(s.snaps.LayerPath(l))
		if err := s.snaps.RemoveLayer(l); err != nil {
			errs = append(errs, err)
		} else {
			reclaimed += n
		}
	}
	return reclaimed, errors.Join(errs...)
}

// Verify checks the whole store: every blob's content against its digest,
// every image's manifest, config, layer blobs and unpacked layers present,
// every name and rootfs pointing at an image that exists, no unfinished
// ingest or unpack. It returns one error per problem; none means consistent.
func (s *Store) Verify() []error {
	errs := s.content.Verify()
	errs = append(errs, s.snaps.Verify()...)
	s.db.View(func(tx *bolt.Tx) error {
		tx.Bucket(bucketImages).ForEach(func(k, _ []byte) error {
			id := digest.Digest(k)
			r, err := loadRecord(tx, id)
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			for _, d := range []digest.Digest{id, r.Manifest} {
				if !s.content.Has(d) {
					errs = append(errs, fmt.Errorf("image %s: blob %s is missing", id, d))
				}
			}
			for _, l := range r.Layers {
				if !s.content.Has(l.Digest) {
					errs = append(errs, fmt.Errorf("image %s: layer blob %s is missing", id, l.Digest))
				}
				if !s.snaps.HasLayer(l.DiffID) {
					errs = append(errs, fmt.Errorf("image %s: unpacked layer %s is missing", id, l.DiffID))
				}
			}
			return nil
		})
		for _, b := range [][]byte{bucketTags, bucketRootfs} {
			tx.Bucket(b).ForEach(func(k, v []byte) error {
				if tx.Bucket(bucketImages).Get(v) == nil {
					errs = append(errs, fmt.Errorf("%s %q points at missing image %s", b, k, v))
				}
				return nil
			})
		}
		return nil
	})
	return errs
}

// PrepareRootfs makes the writable layer for a container (key) on top of
// the image ref names, and records that the container uses the image.
func (s *Store) PrepareRootfs(key, ref string) (*Image, error) {
	return s.PrepareRootfsSized(key, ref, 0)
}

// PrepareRootfsSized is PrepareRootfs with the writable layer limited to
// size bytes (0: unlimited).
func (s *Store) PrepareRootfsSized(key, ref string, size int64) (*Image, error) {
	le := s.newLease()
	defer le.release()
	var img *Image
	err := s.db.Update(func(tx *bolt.Tx) error {
		id, err := s.resolve(tx, ref)
		if err != nil {
			return err
		}
		if tx.Bucket(bucketRootfs).Get([]byte(key)) != nil {
			return fmt.Errorf("rootfs %q: %w", key, errdefs.ErrConflict)
		}
		r, err := loadRecord(tx, id)
		if err != nil {
			return err
		}
		if img, err = s.toImage(tx, id, r); err != nil {
			return err
		}
		diffIDs := make([]digest.Digest, len(r.Layers))
		for i, l := range r.Layers {
			diffIDs[i] = l.DiffID
		}
		// The image is in this transaction's view, so its layers were
		// kept by any sweep before the pins.
		le.pin(diffIDs...)
		if err := s.snaps.PrepareSized(key, diffIDs, size); err != nil {
			return err
		}
		if err := tx.Bucket(bucketRootfs).Put([]byte(key), []byte(id)); err != nil {
			s.snaps.Remove(key)
			return err
		}
		return nil
	})
	return img, err
}

// MountRootfs mounts a prepared rootfs on target.
func (s *Store) MountRootfs(key, target string) error { return s.snaps.Mount(key, target) }

// MountRootfsMapped mounts a prepared rootfs on target for a container in
// the user namespace ns whose root is host uid:gid (storage.MountMapped).
func (s *Store) MountRootfsMapped(key, target string, ns *os.File, uid, gid int) error {
	return s.snaps.MountMapped(key, target, ns, uid, gid)
}

// MountRootfsShifted mounts a prepared rootfs on target for a container
// whose ids are m's, over chown-copied layers (storage.MountShifted): the
// fallback where layers cannot be idmapped.
func (s *Store) MountRootfsShifted(key, target string, m userns.Mapping) error {
	return s.snaps.MountShifted(key, target, m)
}

// RemoveShifted deletes the layer copies made for m.
func (s *Store) RemoveShifted(m userns.Mapping) error { return s.snaps.RemoveShifted(m) }

// ProbeMapped says whether layers can be idmapped here, or why not.
func (s *Store) ProbeMapped(ns *os.File) error { return s.snaps.ProbeMapped(ns) }

// RootfsUsage is the size of a container's writable layer (SizeRw).
func (s *Store) RootfsUsage(key string) (int64, error) { return s.snaps.Usage(key) }

// RemoveRootfs deletes a container's writable layer and its record. The
// caller unmounts it first.
func (s *Store) RemoveRootfs(key string) error {
	if err := s.snaps.Remove(key); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRootfs).Delete([]byte(key))
	})
}

// StorageDriver names how rootfs overlays are mounted: overlay2 (the
// kernel's overlayfs) or fuse-overlayfs.
func (s *Store) StorageDriver() string { return s.snaps.Driver() }

// QuotaBackend names how size-limited writable layers are limited here.
func (s *Store) QuotaBackend() string { return s.snaps.QuotaBackend() }
