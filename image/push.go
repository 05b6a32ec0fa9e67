package image

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-project/berth/errdefs"
)

// PushOptions tune one push.
type PushOptions struct {
	// Auth, when set, is used instead of the store's keychain.
	Auth *authn.AuthConfig
	// Progress receives per-layer states ("Preparing", "Pushing",
	// "Pushed", "Layer already exists").
	Progress func(Progress)
}

// PushResult is what the registry now holds under the tag.
type PushResult struct {
	Tag    string
	Digest digest.Digest // the manifest's
	Size   int           // the manifest's bytes
}

// Push uploads the image named ref to its registry: every layer blob the
// registry lacks, the config, then the manifest under ref's tag. The
// blobs are the store's own (as pulled, loaded or built), so the manifest
// pushed is the one the image has, byte for byte.
func (s *Store) Push(ctx context.Context, refStr string, po PushOptions) (PushResult, error) {
	ref, err := parseRef(refStr, s.opts.InsecureRegistries)
	if err != nil {
		return PushResult{}, err
	}
	tag, ok := ref.(name.Tag)
	if !ok {
		return PushResult{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("cannot push %s: a digest reference names no tag to push to", refStr))
	}
	progress := po.Progress
	if progress == nil {
		progress = func(Progress) {}
	}
	var rec *imageRecord
	var id digest.Digest
	err = s.db.View(func(tx *bolt.Tx) error {
		var err error
		if id, err = s.resolve(tx, fullName(ref)); err != nil {
			return err
		}
		rec, err = loadRecord(tx, id)
		return err
	})
	if err != nil {
		return PushResult{}, errdefs.New(errdefs.ErrNotFound, "An image does not exist locally with the tag: "+Familiar(repoName(ref)))
	}
	var auth authn.Authenticator
	if po.Auth != nil {
		auth = authn.FromConfig(*po.Auth)
	} else if auth, err = s.opts.Keychain.Resolve(ref.Context()); err != nil {
		return PushResult{}, fmt.Errorf("push %s: credentials: %w", refStr, err)
	}
	tr := s.opts.Transport
	if tr == nil {
		tr = remote.DefaultTransport
	}
	fail := func(err error) (PushResult, error) {
		return PushResult{}, fmt.Errorf("push %s: %w", refStr, registryError(ref, err))
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithRetryBackoff(remote.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Steps: 2}),
		remote.WithAuth(auth),
		remote.WithTransport(tr),
	}
	rt, err := transport.NewWithContext(ctx, ref.Context().Registry, auth, tr, []string{ref.Context().Scope(transport.PushScope)})
	if err != nil {
		return fail(err)
	}
	client := &http.Client{Transport: rt}

	// The blobs are pinned while they are read; an image removed before
	// the pins took hold is gone.
	le := s.newLease()
	defer le.release()
	if rec, err = s.pinImage(le, id); err != nil {
		return PushResult{}, errdefs.New(errdefs.ErrNotFound, "An image does not exist locally with the tag: "+Familiar(repoName(ref)))
	}
	manifest, err := s.content.ReadAll(rec.Manifest)
	if err != nil {
		return PushResult{}, fmt.Errorf("push %s: the image's manifest %s: %w", refStr, rec.Manifest, err)
	}
	layers := slices.Clone(rec.Layers)
	slices.Reverse(layers) // as docker lists them: the top layer first
	for _, l := range layers {
		progress(Progress{ID: shortID(l.Digest), Status: "Preparing"})
	}
	for _, l := range layers {
		id := shortID(l.Digest)
		exists, err := blobExists(ctx, client, ref.Context(), l.Digest)
		if err != nil {
			return fail(err)
		}
		if exists {
			progress(Progress{ID: id, Status: "Layer already exists"})
			continue
		}
		progress(Progress{ID: id, Status: "Pushing", Total: l.Size})
		layer, err := partial.CompressedToLayer(&storeBlob{s: s, d: l.Digest, size: l.Size, mt: types.MediaType(l.MediaType)})
		if err != nil {
			return PushResult{}, err
		}
		if err := remote.WriteLayer(ref.Context(), layer, ropts...); err != nil {
			return fail(fmt.Errorf("layer %s: %w", l.Digest, err))
		}
		progress(Progress{ID: id, Status: "Pushed"})
	}
	cfg, err := s.content.ReadAll(id) // an image's ID is its config's digest
	if err != nil {
		return PushResult{}, fmt.Errorf("push %s: the image's config: %w", refStr, err)
	}
	cfgLayer, err := partial.CompressedToLayer(&storeBlob{s: s, d: digest.FromBytes(cfg), size: int64(len(cfg)), mt: types.OCIConfigJSON})
	if err != nil {
		return PushResult{}, err
	}
	if err := remote.WriteLayer(ref.Context(), cfgLayer, ropts...); err != nil {
		return fail(fmt.Errorf("config: %w", err))
	}
	if err := remote.Put(tag, rawManifest{raw: manifest, mt: types.MediaType(rec.MediaType)}, ropts...); err != nil {
		return fail(fmt.Errorf("manifest: %w", err))
	}
	return PushResult{Tag: tag.TagStr(), Digest: rec.Manifest, Size: len(manifest)}, nil
}

// blobExists asks the registry whether repo has blob d (HEAD).
func blobExists(ctx context.Context, c *http.Client, repo name.Repository, d digest.Digest) (bool, error) {
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", repo.Registry.Scheme(), repo.RegistryStr(), repo.RepositoryStr(), d)
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return false, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, transport.CheckError(resp, http.StatusOK)
}

// storeBlob is a blob of the content store as the registry client's
// compressed layer.
type storeBlob struct {
	s    *Store
	d    digest.Digest
	size int64
	mt   types.MediaType
}

func (b *storeBlob) Digest() (v1.Hash, error)            { return v1.NewHash(b.d.String()) }
func (b *storeBlob) Size() (int64, error)                { return b.size, nil }
func (b *storeBlob) MediaType() (types.MediaType, error) { return b.mt, nil }
func (b *storeBlob) Compressed() (io.ReadCloser, error)  { return b.s.content.Open(b.d) }

// rawManifest is a stored manifest as remote.Put takes it.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }
