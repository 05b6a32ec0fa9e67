package image

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/storage"
)

// bucketBuildCache maps a build step's cache key to the image it made.
var bucketBuildCache = []byte("buildcache")

// CommitOptions describe an image made from a parent image and at most one
// new layer.
type CommitOptions struct {
	// Parent is the image built on; empty for none (FROM scratch).
	Parent digest.Digest
	// Layer writes the new layer as an uncompressed tar; nil adds none.
	Layer func(w io.Writer) error
	// Config is the new image's runtime config (env, cmd, labels…).
	Config dockerspec.DockerOCIImageConfig
	// Author and Comment as docker commit takes them.
	Author string
	// History is the new step's entry; its Created and EmptyLayer are set.
	History ocispec.History
	// Names are tagged on the new image.
	Names []string
}

// Commit makes a new image: the parent's layers, plus the new one if any,
// and the given config; records the parent (docker's image parent chain)
// and tags Names. Nothing is named until everything it names is stored.
func (s *Store) Commit(o CommitOptions) (*Image, error) {
	var names []string
	for _, n := range o.Names {
		r, err := parseRef(n, nil)
		if err != nil {
			return nil, err
		}
		names = append(names, fullName(r))
	}
	le := s.newLease()
	defer le.release()
	now := time.Now().UTC()
	img := dockerspec.DockerOCIImage{Image: ocispec.Image{
		Created: &now, Author: o.Author,
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		RootFS:   ocispec.RootFS{Type: "layers"},
	}}
	var layers []layerRecord
	if o.Parent != "" {
		rec, err := s.pinImage(le, o.Parent)
		if err != nil {
			return nil, err
		}
		layers = append(layers, rec.Layers...)
		var parent *Image
		err = s.db.View(func(tx *bolt.Tx) error {
			parent, err = s.toImage(tx, o.Parent, rec)
			return err
		})
		if err != nil {
			return nil, err
		}
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, parent.Config.RootFS.DiffIDs...)
		img.History = append(img.History, parent.Config.History...)
		img.Platform = parent.Config.Platform
	}
	h := o.History
	h.Created = &now
	if o.Layer != nil {
		l, err := s.ingestLayer(le, o.Layer)
		if err != nil {
			return nil, err
		}
		layers = append(layers, l)
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, l.DiffID)
	} else {
		h.EmptyLayer = true
	}
	img.History = append(img.History, h)
	img.Config = o.Config
	cfgRaw, err := json.Marshal(img)
	if err != nil {
		return nil, err
	}
	rec := &imageRecord{Layers: layers, Parent: o.Parent}
	id, err := s.putConfigAndManifest(le, cfgRaw, rec)
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return s.commitImage(id, rec, names, "")
}

// ingestLayer stores the tar write produces as a plain-tar layer blob and
// unpacks it.
func (s *Store) ingestLayer(le *lease, write func(w io.Writer) error) (layerRecord, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(write(pw)) }()
	d, size, err := s.content.Ingest(pr, func(d digest.Digest) { le.pin(d) })
	pr.CloseWithError(err)
	if err != nil {
		return layerRecord{}, fmt.Errorf("commit: layer: %w", err)
	}
	// Plain tar: the blob's digest is the diffID.
	l := layerRecord{Digest: d, DiffID: d, Size: size, MediaType: ocispec.MediaTypeImageLayer}
	n, err := s.addLayer(le, l, func() (io.ReadCloser, error) { return s.content.Open(d) }, func(Progress) {})
	if err != nil {
		return layerRecord{}, fmt.Errorf("commit: layer: %w", err)
	}
	l.Unpacked = n
	return l, nil
}

// CacheGet returns the image a build step with this key made before, if
// it is still in the store.
func (s *Store) CacheGet(key digest.Digest) (digest.Digest, bool) {
	var id digest.Digest
	s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBuildCache)
		if v := b.Get([]byte(key)); v != nil && tx.Bucket(bucketImages).Get(v) != nil {
			id = digest.Digest(v)
		}
		return nil
	})
	return id, id != ""
}

// CachePut records that a build step with this key made image id.
func (s *Store) CachePut(key, id digest.Digest) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBuildCache).Put([]byte(key), []byte(id))
	})
}

// dropCacheOf forgets the cache entries that name id.
func dropCacheOf(tx *bolt.Tx, id digest.Digest) error {
	b := tx.Bucket(bucketBuildCache)
	var keys [][]byte
	b.ForEach(func(k, v []byte) error {
		if string(v) == string(id) {
			keys = append(keys, append([]byte(nil), k...))
		}
		return nil
	})
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// children lists the images whose parent is id.
func children(tx *bolt.Tx, id digest.Digest) []digest.Digest {
	var out []digest.Digest
	tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
		var r imageRecord
		if json.Unmarshal(v, &r) == nil && r.Parent == id {
			out = append(out, digest.Digest(k))
		}
		return nil
	})
	return out
}

// childCounts counts, in one pass, the images committed on each image.
func childCounts(tx *bolt.Tx) map[digest.Digest]int {
	n := map[digest.Digest]int{}
	tx.Bucket(bucketImages).ForEach(func(_, v []byte) error {
		var r imageRecord
		if json.Unmarshal(v, &r) == nil && r.Parent != "" {
			n[r.Parent]++
		}
		return nil
	})
	return n
}

// dropParents deletes, after id was deleted, its parent and their parents
// while each is untagged, unused by any container and has no other child:
// the intermediate images of a build go with the image built.
func dropParents(tx *bolt.Tx, parent digest.Digest, res *RemoveResult) error {
	for parent != "" {
		rec, err := loadRecord(tx, parent)
		if err != nil {
			return nil
		}
		if len(tagsOf(tx, parent)) > 0 || len(rootfsUsers(tx, parent)) > 0 || len(children(tx, parent)) > 0 {
			return nil
		}
		if err := dropImage(tx, parent, res); err != nil {
			return err
		}
		parent = rec.Parent
	}
	return nil
}

// errHasChildren is docker's refusal to delete an image others build on.
func errHasChildren(id digest.Digest) error {
	return fmt.Errorf("conflict: unable to delete %s (cannot be forced) - image has dependent child images: %w", id.Encoded()[:12], errdefs.ErrConflict)
}

// PrepareBuildRootfs makes a writable root for a build step on image id;
// an empty id is an empty root (FROM scratch). RemoveRootfs undoes it.
func (s *Store) PrepareBuildRootfs(key string, id digest.Digest) error {
	if id != "" {
		_, err := s.PrepareRootfsSized(key, id.String(), 0)
		return err
	}
	return s.snaps.Prepare(key, nil)
}

// RootfsLayer writes what key's root has changed as a layer tar.
func (s *Store) RootfsLayer(key string) func(w io.Writer) error {
	return s.RootfsLayerMapped(key, nil)
}

// RootfsLayerMapped is RootfsLayer with the ids on disk turned into the
// ids archived by mapIDs (a user-namespaced container's own).
func (s *Store) RootfsLayerMapped(key string, mapIDs func(uid, gid int) (int, int)) func(w io.Writer) error {
	return func(w io.Writer) error { return s.snaps.WriteLayer(key, w, mapIDs) }
}

// RootfsChanges lists what key's root has added, changed and deleted.
func (s *Store) RootfsChanges(key string) ([]storage.Change, error) { return s.snaps.Changes(key) }

// RootfsKeys lists the writable roots the store holds.
func (s *Store) RootfsKeys() ([]string, error) { return s.snaps.Snapshots() }

// putConfigAndManifest stores an image's config and an OCI manifest for
// rec's layers, sets rec's manifest fields and returns the image ID.
func (s *Store) putConfigAndManifest(le *lease, cfgRaw []byte, rec *imageRecord) (digest.Digest, error) {
	id := digest.FromBytes(cfgRaw)
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: id, Size: int64(len(cfgRaw))}}
	for _, l := range rec.Layers {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size})
	}
	mraw, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	rec.Manifest, rec.MediaType = digest.FromBytes(mraw), m.MediaType
	le.pin(id, rec.Manifest)
	for dg, b := range map[digest.Digest][]byte{id: cfgRaw, rec.Manifest: mraw} {
		if err := s.content.Put(dg, b); err != nil {
			return "", err
		}
	}
	return id, nil
}
