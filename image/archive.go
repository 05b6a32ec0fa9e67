package image

import (
	"archive/tar"
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/errdefs"
)

// Annotation keys an OCI layout's index uses to name its images.
const (
	annotationFullName = "io.containerd.image.name"
	annotationRefName  = ocispec.AnnotationRefName
)

// archiveManifest is one entry of a docker-archive's manifest.json.
type archiveManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// Save writes the images refs name as one tar that is at once an OCI image
// layout (oci-layout, index.json, blobs/sha256/…) and a docker-archive
// (manifest.json pointing into blobs/) — the format docker 25 and later
// save, which `docker load`, skopeo and Berth's Load all read. A name with
// a tag saves that tag; an ID saves the image with all its tags.
func (s *Store) Save(w io.Writer, refs []string) error {
	type saved struct {
		img   *Image
		names []string
	}
	var images []*saved
	for _, ref := range refs {
		img, err := s.Get(ref)
		if err != nil {
			return err
		}
		names := img.RepoTags
		if r, err := parseRef(ref, nil); err == nil && slices.Contains(img.RepoTags, fullName(r)) {
			names = []string{fullName(r)}
		}
		i := slices.IndexFunc(images, func(s *saved) bool { return s.img.ID == img.ID })
		if i < 0 {
			images = append(images, &saved{img: img})
			i = len(images) - 1
		}
		for _, n := range names {
			if !slices.Contains(images[i].names, n) {
				images[i].names = append(images[i].names, n)
			}
		}
	}
	tw := tar.NewWriter(w)
	written := map[digest.Digest]bool{}
	writeFile := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o444, Size: int64(len(data)), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	writeBlob := func(d digest.Digest) error {
		if written[d] {
			return nil
		}
		written[d] = true
		f, err := s.content.Open(d)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: blobPath(d), Mode: 0o444, Size: fi.Size(), ModTime: time.Unix(0, 0)}); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	}
	if err := writeFile(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	var manifests []archiveManifest
	for _, sv := range images {
		img := sv.img
		blobs := []digest.Digest{img.ID}
		am := archiveManifest{Config: blobPath(img.ID)}
		for _, l := range img.Layers {
			blobs = append(blobs, l.Digest)
			am.Layers = append(am.Layers, blobPath(l.Digest))
		}
		for _, d := range blobs {
			if err := writeBlob(d); err != nil {
				return fmt.Errorf("save %s: %w", img.ID, err)
			}
		}
		mraw, err := s.ociManifest(img)
		if err != nil {
			return fmt.Errorf("save %s: %w", img.ID, err)
		}
		md := digest.FromBytes(mraw)
		if !written[md] {
			written[md] = true
			if err := writeFile(blobPath(md), mraw); err != nil {
				return err
			}
		}
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(mraw))}
		if len(sv.names) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, n := range sv.names {
			d := desc
			_, tag, _ := strings.Cut(n[strings.LastIndex(n, "/")+1:], ":")
			d.Annotations = map[string]string{annotationFullName: n, annotationRefName: tag}
			index.Manifests = append(index.Manifests, d)
			am.RepoTags = append(am.RepoTags, Familiar(n))
		}
		manifests = append(manifests, am)
	}
	for name, v := range map[string]any{"index.json": index, "manifest.json": manifests} {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if err := writeFile(name, b); err != nil {
			return err
		}
	}
	return tw.Close()
}

// ociManifest returns img's manifest with OCI media types: readers of an
// OCI layout (skopeo among them) skip Docker-typed manifests. Config and
// layer blobs are the same bytes under either type.
func (s *Store) ociManifest(img *Image) ([]byte, error) {
	raw, err := s.content.ReadAll(img.Manifest)
	if err != nil {
		return nil, err
	}
	if img.MediaType == ocispec.MediaTypeImageManifest {
		return raw, nil
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", img.Manifest, err)
	}
	m.MediaType = ocispec.MediaTypeImageManifest
	m.Config.MediaType = ocispec.MediaTypeImageConfig
	for i := range m.Layers {
		switch m.Layers[i].MediaType {
		case "application/vnd.docker.image.rootfs.diff.tar.gzip":
			m.Layers[i].MediaType = ocispec.MediaTypeImageLayerGzip
		case "application/vnd.docker.image.rootfs.diff.tar":
			m.Layers[i].MediaType = ocispec.MediaTypeImageLayer
		}
	}
	return json.Marshal(m)
}

func blobPath(d digest.Digest) string { return "blobs/" + d.Algorithm().String() + "/" + d.Encoded() }

// archive is a tar read into a temporary directory, with its symlinks and
// hard links kept as a map (never made on disk).
type archive struct {
	dir   string
	files map[string]string // member name → file on disk
	links map[string]string // member name → member it points at
}

// readArchive stores the members of a tar under dir.
func readArchive(r io.Reader, dir string) (*archive, error) {
	a := &archive{dir: dir, files: map[string]string{}, links: map[string]string{}}
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			return a, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading archive: %w", err)
		}
		name, err := memberName(hdr.Name)
		if err != nil {
			return nil, err
		}
		switch hdr.Typeflag {
		case tar.TypeReg: // (archive/tar reads the old '\x00' type as TypeReg)
			p := filepath.Join(dir, strconv.Itoa(n))
			f, err := os.Create(p)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("reading archive member %s: %w", hdr.Name, err)
			}
			a.files[name] = p
		case tar.TypeSymlink:
			if a.links[name], err = memberName(path.Join(path.Dir(name), hdr.Linkname)); err != nil {
				return nil, err
			}
		case tar.TypeLink:
			if a.links[name], err = memberName(hdr.Linkname); err != nil {
				return nil, err
			}
		}
	}
}

func memberName(n string) (string, error) {
	p := path.Clean(strings.TrimPrefix(n, "./"))
	if path.IsAbs(p) || p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("archive member %q leads out of the archive: %w", n, errdefs.ErrInvalid)
	}
	return p, nil
}

// file returns the disk path of a member, following the archive's links.
func (a *archive) file(name string) (string, error) {
	name = path.Clean(strings.TrimPrefix(name, "./"))
	for range 16 {
		if p, ok := a.files[name]; ok {
			return p, nil
		}
		t, ok := a.links[name]
		if !ok {
			break
		}
		name = t
	}
	return "", fmt.Errorf("archive member %q is missing: %w", name, errdefs.ErrInvalid)
}

func (a *archive) read(name string) ([]byte, error) {
	p, err := a.file(name)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(p)
}

// readBlob returns the blob an OCI layout holds for d, checked against d.
func (a *archive) readBlob(d digest.Digest) ([]byte, error) {
	b, err := a.read(blobPath(d))
	if err != nil {
		return nil, err
	}
	if digest.FromBytes(b) != d {
		return nil, fmt.Errorf("blob %s: content does not match its digest: %w", d, errdefs.ErrInvalid)
	}
	return b, nil
}

// Load adds the images of a docker-archive or OCI-layout tar (as docker
// save, skopeo and Save write them) and returns their names — or IDs, for
// images the archive does not name. Every blob is verified; layers already
// in the store are not unpacked again.
func (s *Store) Load(r io.Reader, progress func(Progress)) ([]string, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	tmp, err := os.MkdirTemp(s.tmpDir(), "load-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	a, err := readArchive(r, tmp)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if _, ok := a.files["manifest.json"]; ok {
		return s.loadDockerArchive(a, progress)
	}
	if _, ok := a.files["index.json"]; ok {
		return s.loadOCILayout(a, progress)
	}
	return nil, fmt.Errorf("load: the archive has neither manifest.json nor index.json: not a docker-archive or OCI layout: %w", errdefs.ErrInvalid)
}

func (s *Store) loadDockerArchive(a *archive, progress func(Progress)) ([]string, error) {
	raw, err := a.read("manifest.json")
	if err != nil {
		return nil, err
	}
	var entries []archiveManifest
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("load: manifest.json: %w: %v", errdefs.ErrInvalid, err)
	}
	var loaded []string
	for _, e := range entries {
		cfgRaw, err := a.read(e.Config)
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		var layers []ocispec.Descriptor
		for _, lp := range e.Layers {
			p, err := a.file(lp)
			if err != nil {
				return nil, fmt.Errorf("load: %w", err)
			}
			desc, err := describeFile(p)
			if err != nil {
				return nil, fmt.Errorf("load: layer %s: %w", lp, err)
			}
			layers = append(layers, desc)
		}
		// A docker-archive has no registry manifest: make one.
		m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfgRaw), Size: int64(len(cfgRaw))}, Layers: layers}
		names, err := s.addImage(a, m, e.Layers, cfgRaw, e.RepoTags, progress)
		if err != nil {
			return nil, err
		}
		loaded = append(loaded, names...)
	}
	return loaded, nil
}

// describeFile hashes a layer file and names its media type by its
// compression.
func describeFile(p string) (ocispec.Descriptor, error) {
	f, err := os.Open(p)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	magic, _ := br.Peek(4)
	mt := layerMediaType(magic)
	h := digest.SHA256.Digester()
	n, err := io.Copy(h.Hash(), br)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: mt, Digest: h.Digest(), Size: n}, nil
}

func (s *Store) loadOCILayout(a *archive, progress func(Progress)) ([]string, error) {
	raw, err := a.read("index.json")
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("load: index.json: %w: %v", errdefs.ErrInvalid, err)
	}
	var loaded []string
	for _, desc := range idx.Manifests {
		if err := desc.Digest.Validate(); err != nil {
			return nil, fmt.Errorf("load: index.json: digest %q: %w", desc.Digest, errdefs.ErrInvalid)
		}
		mraw, err := a.readBlob(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		if desc.MediaType == ocispec.MediaTypeImageIndex || desc.MediaType == "application/vnd.docker.distribution.manifest.list.v2+json" {
			child, err := pickPlatform(mraw, s.opts.Platform)
			if err != nil {
				return nil, fmt.Errorf("load: %w", err)
			}
			if mraw, err = a.readBlob(digest.Digest(child.String())); err != nil {
				return nil, fmt.Errorf("load: %w", err)
			}
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(mraw, &m); err != nil {
			return nil, fmt.Errorf("load: manifest %s: %w: %v", desc.Digest, errdefs.ErrInvalid, err)
		}
		if m.MediaType == "" {
			m.MediaType = desc.MediaType
		}
		cfgRaw, err := a.read(blobPath(m.Config.Digest))
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		var names []string
		if n := desc.Annotations[annotationFullName]; n != "" {
			names = append(names, n)
		}
		var files []string
		for _, l := range m.Layers {
			files = append(files, blobPath(l.Digest))
		}
		got, err := s.addImage(a, m, files, cfgRaw, names, progress)
		if err != nil {
			return nil, err
		}
		loaded = append(loaded, got...)
	}
	return loaded, nil
}

// addImage stores one image of an archive: config, layers (verified
// against the manifest's digests and the config's diffIDs), the manifest
// as given in m, and the names.
// files[i] is the archive member holding layer i.
func (s *Store) addImage(a *archive, m ocispec.Manifest, files []string, cfgRaw []byte, names []string, progress func(Progress)) ([]string, error) {
	if len(files) != len(m.Layers) {
		return nil, fmt.Errorf("load: manifest lists %d layers, the archive %d: %w", len(m.Layers), len(files), errdefs.ErrInvalid)
	}
	le := s.newLease()
	defer le.release()
	id := digest.FromBytes(cfgRaw)
	if m.Config.Digest != "" && m.Config.Digest != id {
		return nil, fmt.Errorf("load: config %s: content has digest %s: %w", m.Config.Digest, id, errdefs.ErrInvalid)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cfgRaw, &cfg); err != nil {
		return nil, fmt.Errorf("load: config %s: %w: %v", id, errdefs.ErrInvalid, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("load: config %s lists %d layers, the archive %d: %w", id, len(cfg.RootFS.DiffIDs), len(m.Layers), errdefs.ErrInvalid)
	}
	var full []string
	for _, n := range names {
		r, err := parseRef(n, nil)
		if err != nil {
			return nil, fmt.Errorf("load: image name: %w", err)
		}
		full = append(full, fullName(r))
	}
	le.pin(id)
	if err := s.content.Put(id, cfgRaw); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	layers := make([]layerRecord, len(m.Layers))
	for i, l := range m.Layers {
		layers[i] = layerRecord{Digest: l.Digest, DiffID: cfg.RootFS.DiffIDs[i], Size: l.Size, MediaType: l.MediaType}
		p, err := a.file(files[i])
		if err != nil {
			return nil, fmt.Errorf("load: layer %s: %w", l.Digest, err)
		}
		n, err := s.addLayer(le, layers[i], func() (io.ReadCloser, error) { return os.Open(p) }, progress)
		if err != nil {
			return nil, fmt.Errorf("load: image %s: layer %s: %w", id.Encoded()[:12], l.Digest, err)
		}
		layers[i].Unpacked = n
	}
	mraw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	mdigest := digest.FromBytes(mraw)
	le.pin(mdigest)
	if err := s.content.Put(mdigest, mraw); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	rec := &imageRecord{Manifest: mdigest, MediaType: m.MediaType, Layers: layers}
	if _, err := s.commitImage(id, rec, full, ""); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if len(full) == 0 {
		return []string{id.String()}, nil
	}
	return full, nil
}

// ImportOptions name an imported image and shape its config.
type ImportOptions struct {
	Ref     string // name; empty for none
	Message string // the history entry's comment; empty: "Imported from -", as dockerd
	// Change, if set, edits the image config (docker import --change).
	Change func(*dockerspec.DockerOCIImageConfig) error
}

// Import makes a one-layer image from a plain root filesystem tarball
// (uncompressed, gzip or zstd).
func (s *Store) Import(r io.Reader, o ImportOptions) (*Image, error) {
	ref := o.Ref
	var imgCfg dockerspec.DockerOCIImageConfig
	if o.Change != nil {
		if err := o.Change(&imgCfg); err != nil {
			return nil, err
		}
	}
	var names []string
	if ref != "" {
		rr, err := parseRef(ref, nil)
		if err != nil {
			return nil, err
		}
		names = []string{fullName(rr)}
	}
	le := s.newLease()
	defer le.release()
	d, size, err := s.content.Ingest(r, func(d digest.Digest) { le.pin(d) })
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	// The diffID is the digest of the uncompressed tar: one pass to learn
	// it, then addLayer unpacks and checks it.
	f, err := s.content.Open(d)
	if err != nil {
		return nil, err
	}
	tarStream, mediaType, closeDecomp, err := decompress(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("import: %w", err)
	}
	diffID, err := digest.SHA256.FromReader(tarStream)
	closeDecomp()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("import: reading the tarball: %w", err)
	}
	l := layerRecord{Digest: d, DiffID: diffID, Size: size, MediaType: mediaType}
	n, err := s.addLayer(le, l, func() (io.ReadCloser, error) { return s.content.Open(d) }, func(Progress) {})
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	l.Unpacked = n
	now := time.Now().UTC()
	comment := o.Message
	if comment == "" {
		comment = "Imported from -" // as dockerd names a tarball sent in the request
	}
	cfg := dockerspec.DockerOCIImage{Image: ocispec.Image{Created: &now, Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
		History: []ocispec.History{{Created: &now, Comment: comment}}},
		Config: imgCfg}
	cfgRaw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	rec := &imageRecord{Layers: []layerRecord{l}}
	id, err := s.putConfigAndManifest(le, cfgRaw, rec)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return s.commitImage(id, rec, names, "")
}
