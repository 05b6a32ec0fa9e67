package image

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sync/errgroup"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/storage"
)

// PullOptions tune one pull.
type PullOptions struct {
	// Platform to pick from an index; nil means the store's default.
	Platform *v1.Platform
	// Auth, when set, is used instead of the store's keychain (the Docker
	// API's X-Registry-Auth).
	Auth *authn.AuthConfig
	// Progress, when set, receives per-layer progress. It is called from
	// several goroutines, never concurrently for the same layer ID.
	Progress func(Progress)
}

// maxParallelLayers is how many layers download and unpack at once.
const maxParallelLayers = 4

// Pull fetches an image from its registry into the store, unpacks its
// layers and points the reference at it. Layers already present are not
// downloaded again; the same layer pulled concurrently is fetched once.
// Errors name the image and, for layer failures, the layer; nothing
// partial is left behind.
func (s *Store) Pull(ctx context.Context, refStr string, po PullOptions) (*Image, error) {
	ref, err := parseRef(refStr, s.opts.InsecureRegistries)
	if err != nil {
		return nil, err
	}
	platform := s.opts.Platform
	if po.Platform != nil {
		platform = *po.Platform
	}
	progress := po.Progress
	if progress == nil {
		progress = func(Progress) {}
	}
	var auth authn.Authenticator
	if po.Auth != nil {
		auth = authn.FromConfig(*po.Auth)
	} else if auth, err = s.opts.Keychain.Resolve(ref.Context()); err != nil {
		return nil, fmt.Errorf("pull %s: credentials: %w", refStr, err)
	}
	tr := s.opts.Transport
	if tr == nil {
		tr = remote.DefaultTransport
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithRetryBackoff(remote.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Steps: 2}),
		remote.WithAuth(auth),
		remote.WithTransport(tr),
	}
	fail := func(err error) (*Image, error) {
		return nil, fmt.Errorf("pull %s: %w", refStr, err)
	}

	progress(Progress{Status: "Pulling from " + ref.Context().RepositoryStr(), ID: ref.Identifier()})
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return fail(registryError(ref, err))
	}
	top := desc.Digest
	manifest, mediaType, mdigest := desc.Manifest, desc.MediaType, digest.Digest(desc.Digest.String())
	var indexBlob []byte
	if mediaType.IsSchema1() {
		//lint:ignore ST1005 "Docker" is a name
		return fail(fmt.Errorf("Docker schema 1 manifests are not supported: %w", errdefs.ErrInvalid))
	}
	if mediaType.IsIndex() {
		indexBlob = desc.Manifest
		child, err := pickPlatform(desc.Manifest, platform)
		if err != nil {
			return fail(err)
		}
		cdesc, err := remote.Get(ref.Context().Digest(child.String()), ropts...)
		if err != nil {
			return fail(registryError(ref, err))
		}
		manifest, mediaType, mdigest = cdesc.Manifest, cdesc.MediaType, digest.Digest(cdesc.Digest.String())
	}
	if !mediaType.IsImage() {
		return fail(fmt.Errorf("unsupported manifest media type %q: %w", mediaType, errdefs.ErrInvalid))
	}
	m, err := v1.ParseManifest(bytes.NewReader(manifest))
	if err != nil {
		return fail(fmt.Errorf("manifest %s: %w: %v", mdigest, errdefs.ErrInvalid, err))
	}
	for _, l := range m.Layers {
		if !l.MediaType.IsDistributable() || strings.Contains(string(l.MediaType), "nondistributable") {
			return fail(fmt.Errorf("layer %s is a foreign (non-distributable) layer, %s; Berth does not fetch those: %w", l.Digest, l.MediaType, errdefs.ErrInvalid))
		}
		if !l.MediaType.IsLayer() && !strings.HasPrefix(string(l.MediaType), "application/vnd.oci.image.layer.v1.tar") {
			return fail(fmt.Errorf("layer %s has unsupported media type %q: %w", l.Digest, l.MediaType, errdefs.ErrInvalid))
		}
	}

	blobs, err := newBlobSource(ctx, ref.Context(), auth, tr)
	if err != nil {
		return fail(registryError(ref, err))
	}

	// Everything fetched stays pinned until the image record names it.
	le := s.newLease()
	defer le.release()

	cfgDigest := digest.Digest(m.Config.Digest.String())
	rawCfg, err := s.fetchSmall(le, ctx, blobs, cfgDigest)
	if err != nil {
		return fail(fmt.Errorf("config %s: %w", cfgDigest, err))
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(rawCfg, &cfg); err != nil {
		return fail(fmt.Errorf("config %s: %w: %v", cfgDigest, errdefs.ErrInvalid, err))
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return fail(fmt.Errorf("config %s lists %d layers, the manifest %d: %w", cfgDigest, len(cfg.RootFS.DiffIDs), len(m.Layers), errdefs.ErrInvalid))
	}
	if po.Platform != nil && (cfg.OS != platform.OS || cfg.Architecture != platform.Architecture) {
		return fail(fmt.Errorf("image is %s/%s, not the requested %s: %w", cfg.OS, cfg.Architecture, platform, errdefs.ErrNotFound))
	}

	layers := make([]layerRecord, len(m.Layers))
	for i, l := range m.Layers {
		layers[i] = layerRecord{Digest: digest.Digest(l.Digest.String()), DiffID: cfg.RootFS.DiffIDs[i], Size: l.Size, MediaType: string(l.MediaType)}
		progress(Progress{ID: shortID(layers[i].Digest), Status: "Pulling fs layer"})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxParallelLayers)
	for i := range layers {
		l := &layers[i]
		g.Go(func() error {
			open := func() (io.ReadCloser, error) { return blobs.open(gctx, l.Digest) }
			n, err := s.addLayer(le, *l, open, progress)
			if err != nil {
				return fmt.Errorf("layer %s: %w", l.Digest, err)
			}
			l.Unpacked = n
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fail(err)
	}

	le.pin(mdigest, digest.Digest(top.String()))
	if err := s.content.Put(mdigest, manifest); err != nil {
		return fail(err)
	}
	if indexBlob != nil {
		if err := s.content.Put(digest.Digest(top.String()), indexBlob); err != nil {
			return fail(err)
		}
	}
	repoDigest := repoName(ref) + "@" + top.String()
	rec := &imageRecord{Manifest: mdigest, MediaType: string(mediaType), Layers: layers}
	img, err := s.commitImage(cfgDigest, rec, []string{fullName(ref)}, repoDigest)
	if err != nil {
		return fail(err)
	}
	progress(Progress{Status: "Digest: " + top.String()})
	return img, nil
}

// commitImage records an image whose blobs and layers are all in place,
// points names at it and adds repoDigest (if any) to its digests — in one
// transaction.
func (s *Store) commitImage(id digest.Digest, rec *imageRecord, names []string, repoDigest string) (*Image, error) {
	var img *Image
	err := s.db.Update(func(tx *bolt.Tx) error {
		rec.Added = time.Now().UTC()
		if old, err := loadRecord(tx, id); err == nil {
			rec.RepoDigests, rec.Added = old.RepoDigests, old.Added
		}
		if repoDigest != "" && !slices.Contains(rec.RepoDigests, repoDigest) {
			rec.RepoDigests = append(rec.RepoDigests, repoDigest)
		}
		if err := putRecord(tx, id, rec); err != nil {
			return err
		}
		for _, n := range names {
			if err := tx.Bucket(bucketTags).Put([]byte(n), []byte(id)); err != nil {
				return err
			}
		}
		var err error
		img, err = s.toImage(tx, id, rec)
		return err
	})
	return img, err
}

// pickPlatform returns the manifest in an index that matches p.
func pickPlatform(raw []byte, p v1.Platform) (v1.Hash, error) {
	idx, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("image index: %w: %v", errdefs.ErrInvalid, err)
	}
	var have []string
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			continue
		}
		if m.Platform.OS == p.OS && m.Platform.Architecture == p.Architecture && (p.Variant == "" || m.Platform.Variant == p.Variant) {
			return m.Digest, nil
		}
		have = append(have, m.Platform.String())
	}
	return v1.Hash{}, fmt.Errorf("no image for platform %s in the index (it has: %s): %w", p, strings.Join(have, ", "), errdefs.ErrNotFound)
}

// registryError turns the registry client's errors into the store's
// classes, naming the image or registry.
func registryError(ref name.Reference, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("image %s not found in the registry: %w", fullName(ref), errdefs.ErrNotFound)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("access to %s denied by the registry (%d): %w", fullName(ref), terr.StatusCode, errdefs.ErrUnauthorized)
		}
		for _, d := range terr.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode {
				return fmt.Errorf("image %s not found in the registry: %w", fullName(ref), errdefs.ErrNotFound)
			}
		}
		return fmt.Errorf("registry %s: %w", ref.Context().RegistryStr(), err)
	}
	var nerr net.Error
	var operr *net.OpError
	if errors.As(err, &operr) || errors.As(err, &nerr) {
		return fmt.Errorf("registry %s is unreachable: %v: %w", ref.Context().RegistryStr(), err, errdefs.ErrUnavailable)
	}
	return err
}

// blobSource fetches the blobs of one repository over the registry
// protocol, authenticated once. Unlike the registry client's layer reader
// it does not hash what it returns: the content store does, once.
type blobSource struct {
	repo   name.Repository
	client *http.Client
}

func newBlobSource(ctx context.Context, repo name.Repository, auth authn.Authenticator, tr http.RoundTripper) (*blobSource, error) {
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, tr, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	return &blobSource{repo: repo, client: &http.Client{Transport: rt}}, nil
}

// open starts the download of blob d.
func (b *blobSource) open(ctx context.Context, d digest.Digest) (io.ReadCloser, error) {
	u := fmt.Sprintf("%s://%s/v2/%s/blobs/%s", b.repo.Registry.Scheme(), b.repo.RegistryStr(), b.repo.RepositoryStr(), d)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, registryError(b.repo.Tag("latest"), err)
	}
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		resp.Body.Close()
		return nil, registryError(b.repo.Tag("latest"), err)
	}
	return resp.Body, nil
}

// fetchSmall fetches a blob (config) into the store and returns it.
func (s *Store) fetchSmall(le *lease, ctx context.Context, blobs *blobSource, d digest.Digest) ([]byte, error) {
	le.pin(d)
	if b, err := s.content.ReadAll(d); err == nil {
		return b, nil
	}
	rc, err := blobs.open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	const max = 16 << 20
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, fmt.Errorf("download: %w", err)
	}
	if len(b) > max {
		return nil, fmt.Errorf("larger than %d bytes: %w", max, errdefs.ErrInvalid)
	}
	if err := s.content.Put(d, b); err != nil {
		return nil, err
	}
	return b, nil
}

// addLayer makes sure layer l's blob is stored and its content unpacked,
// reading the blob from open (a download, or a file of an archive) and
// unpacking in the same pass. It returns the unpacked size. Concurrent
// calls for the same blob share one fetch. The blob and the layer are
// pinned to le.
func (s *Store) addLayer(le *lease, l layerRecord, open func() (io.ReadCloser, error), progress func(Progress)) (int64, error) {
	le.pin(l.Digest, l.DiffID)
	id := shortID(l.Digest)
	v, err, _ := s.flights.Do(string(l.Digest), func() (any, error) {
		haveBlob, haveLayer := s.content.Has(l.Digest), s.snaps.HasLayer(l.DiffID)
		if haveBlob && haveLayer {
			progress(Progress{ID: id, Status: "Already exists"})
			return s.unpackedSize(l.DiffID)
		}
		var src io.Reader
		var finish func() error
		if haveBlob {
			f, err := s.content.Open(l.Digest)
			if err != nil {
				return int64(0), err
			}
			defer f.Close()
			src, finish = f, func() error { return nil }
		} else {
			rc, err := open()
			if err != nil {
				return int64(0), err
			}
			defer rc.Close()
			w, err := s.content.Writer(l.Digest, l.Size)
			if err != nil {
				return int64(0), err
			}
			defer w.Abort()
			counter := &countingReader{r: rc, report: func(n int64) {
				progress(Progress{ID: id, Status: "Downloading", Current: n, Total: l.Size})
			}}
			src, finish = io.TeeReader(counter, w), w.Commit
		}
		if haveLayer {
			// The content is unpacked already (from another blob of it: an
			// import, a build): keep this blob too, checked.
			if _, err := io.Copy(io.Discard, src); err != nil {
				return int64(0), err
			}
			if err := finish(); err != nil {
				return int64(0), err
			}
			progress(Progress{ID: id, Status: "Pull complete"})
			return s.unpackedSize(l.DiffID)
		}
		tarStream, _, closeDecomp, err := decompress(src)
		if err != nil {
			return int64(0), err
		}
		p, err := s.snaps.Unpack(l.DiffID, tarStream, s.opts.Unpack)
		closeDecomp()
		// The decompressor may stop before the end of the blob: read and
		// hash the rest. A blob that fails its digest is the root cause
		// of whatever the unpack made of it, so its error comes first.
		_, drainErr := io.Copy(io.Discard, src)
		progress(Progress{ID: id, Status: "Verifying Checksum"})
		if drainErr == nil {
			drainErr = finish()
		}
		if drainErr != nil {
			if p != nil {
				p.Abort()
			}
			return int64(0), drainErr
		}
		if err != nil {
			return int64(0), err
		}
		defer p.Abort()
		progress(Progress{ID: id, Status: "Download complete"})
		if err := p.Commit(); err != nil {
			return int64(0), err
		}
		progress(Progress{ID: id, Status: "Pull complete"})
		return p.Bytes, nil
	})
	if err != nil {
		return 0, err
	}
	return v.(int64), nil
}

// unpackedSize is the file-content size of a layer already unpacked: as
// an image records it, or else counted on disk (a layer no image names).
func (s *Store) unpackedSize(diffID digest.Digest) (int64, error) {
	errFound := errors.New("found")
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketImages).ForEach(func(_, v []byte) error {
			var r imageRecord
			if json.Unmarshal(v, &r) != nil {
				return nil
			}
			for _, l := range r.Layers {
				if l.DiffID == diffID {
					n = l.Unpacked
					return errFound
				}
			}
			return nil
		})
	})
	if err == errFound {
		return n, nil
	}
	if err != nil {
		return 0, err
	}
	return storage.DirSize(s.snaps.LayerPath(diffID))
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// layerMediaType names a layer's OCI media type by the compression its
// first bytes show: media types are not always honest, and docker-archive
// layers are often plain tar.
func layerMediaType(magic []byte) string {
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		return ocispec.MediaTypeImageLayerGzip
	case bytes.HasPrefix(magic, zstdMagic):
		return ocispec.MediaTypeImageLayerZstd
	}
	return ocispec.MediaTypeImageLayer
}

// decompress returns the tar stream of a layer blob, gzip, zstd or plain,
// and the media type that makes it.
func decompress(r io.Reader) (io.Reader, string, func(), error) {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, _ := br.Peek(4)
	mt := layerMediaType(magic)
	switch mt {
	case ocispec.MediaTypeImageLayerGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, "", nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, mt, func() { zr.Close() }, nil
	case ocispec.MediaTypeImageLayerZstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, "", nil, fmt.Errorf("zstd: %w", err)
		}
		return zr, mt, zr.Close, nil
	}
	return br, mt, func() {}, nil
}

// countingReader reports the running byte count, at most every 100 ms.
type countingReader struct {
	r      io.Reader
	n      int64
	last   time.Time
	report func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if now := time.Now(); now.Sub(c.last) > 100*time.Millisecond || err == io.EOF {
		c.last = now
		c.report(c.n)
	}
	return n, err
}

func shortID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}
