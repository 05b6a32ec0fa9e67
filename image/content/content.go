// Package content is a content-addressed blob store: each blob lives at
// blobs/sha256/<hex> under the store's root and is named by its digest.
//
// Contract: a file under blobs/ is always complete and verified. Writes go
// to ingest/<random>, are hashed as they are written, and are renamed into
// blobs/ only after the digest (and size, when known) match and the data
// is on disk (fsync). A crash or kill leaves at most a file in ingest/,
// which Open removes. Safe for concurrent use by one process; the caller
// (image.Store) holds the data root's lock against other processes.
package content

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/errdefs"
)

// Store holds blobs under one root directory.
type Store struct {
	root string
}

// Open makes the store's directories under root and removes any
// unfinished ingest left by an earlier process.
func Open(root string) (*Store, error) {
	s := &Store{root: root}
	if err := os.RemoveAll(s.ingestDir()); err != nil {
		return nil, err
	}
	for _, d := range []string{filepath.Join(root, "blobs", "sha256"), s.ingestDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) ingestDir() string { return filepath.Join(s.root, "ingest") }

// Path is where the blob d lives (whether or not it exists).
func (s *Store) Path(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded())
}

func check(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w: %v", d, errdefs.ErrInvalid, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("digest %q: %w: only sha256 is supported", d, errdefs.ErrInvalid)
	}
	return nil
}

// Size returns the size of blob d, or an ErrNotFound error.
func (s *Store) Size(d digest.Digest) (int64, error) {
	if err := check(d); err != nil {
		return 0, err
	}
	fi, err := os.Stat(s.Path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Has reports whether blob d is in the store.
func (s *Store) Has(d digest.Digest) bool {
	_, err := s.Size(d)
	return err == nil
}

// Open opens blob d for reading.
func (s *Store) Open(d digest.Digest) (*os.File, error) {
	if err := check(d); err != nil {
		return nil, err
	}
	f, err := os.Open(s.Path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	}
	return f, err
}

// ReadAll returns the content of a (small) blob.
func (s *Store) ReadAll(d digest.Digest) ([]byte, error) {
	f, err := s.Open(d)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// Put stores data, which must have digest d. A blob already stored is
// left as it is.
func (s *Store) Put(d digest.Digest, data []byte) error {
	if err := check(d); err != nil {
		return err
	}
	if got := digest.FromBytes(data); got != d {
		return fmt.Errorf("blob %s: content has digest %s: %w", d, got, errdefs.ErrInvalid)
	}
	if s.Has(d) {
		return nil
	}
	w, err := s.Writer(d, int64(len(data)))
	if err != nil {
		return err
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		return err
	}
	return w.Commit()
}

// Ingest stores r's content under its own digest, for blobs whose digest
// is not known in advance (an imported tarball). claim is called with the
// digest before the blob becomes visible in the store.
func (s *Store) Ingest(r io.Reader, claim func(digest.Digest)) (digest.Digest, int64, error) {
	f, err := os.CreateTemp(s.ingestDir(), "unknown-")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	h := digest.SHA256.Digester()
	n, err := io.Copy(f, io.TeeReader(r, h.Hash()))
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		return "", n, fmt.Errorf("storing blob: %w", err)
	}
	d := h.Digest()
	claim(d)
	if err := os.Rename(f.Name(), s.Path(d)); err != nil {
		return "", n, err
	}
	return d, n, nil
}

// Delete removes blob d; a missing blob is not an error.
func (s *Store) Delete(d digest.Digest) error {
	if err := check(d); err != nil {
		return err
	}
	if err := os.Remove(s.Path(d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Walk calls fn for every blob in the store.
func (s *Store) Walk(fn func(d digest.Digest, size int64) error) error {
	dir := filepath.Join(s.root, "blobs", "sha256")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		info, err := e.Info()
		if err != nil {
			return err
		}
		if err := fn(d, info.Size()); err != nil {
			return err
		}
	}
	return nil
}

// Verify re-hashes every blob and returns one error per blob whose content
// does not match its name. It also reports leftover ingest files.
func (s *Store) Verify() []error {
	var errs []error
	err := s.Walk(func(d digest.Digest, _ int64) error {
		if d.Validate() != nil {
			errs = append(errs, fmt.Errorf("blob file %q: not a sha256 digest", d.Encoded()))
			return nil
		}
		f, err := s.Open(d)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		defer f.Close()
		got, err := digest.SHA256.FromReader(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("blob %s: %w", d, err))
		} else if got != d {
			errs = append(errs, fmt.Errorf("blob %s: content has digest %s", d, got))
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	if ents, _ := os.ReadDir(s.ingestDir()); len(ents) > 0 {
		errs = append(errs, fmt.Errorf("%d unfinished ingest file(s) in %s", len(ents), s.ingestDir()))
	}
	return errs
}

// Writer receives one blob. Write hashes as it goes; Commit verifies and
// moves it into place; Abort (safe after Commit) removes what was written.
// Not safe for concurrent use.
type Writer struct {
	s        *Store
	f        *os.File
	h        hash.Hash
	n        int64
	want     digest.Digest
	wantSize int64
	done     bool
}

// Writer starts a blob that must end up with digest want and, when size is
// not negative, that many bytes.
func (s *Store) Writer(want digest.Digest, size int64) (*Writer, error) {
	if err := check(want); err != nil {
		return nil, err
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	f, err := os.OpenFile(filepath.Join(s.ingestDir(), want.Encoded()+"-"+hex.EncodeToString(rnd[:])), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	return &Writer{s: s, f: f, h: digest.SHA256.Hash(), want: want, wantSize: size}, nil
}

func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	if err != nil {
		return n, fmt.Errorf("writing blob %s: %w", w.want, err)
	}
	return n, nil
}

// Commit checks size and digest and renames the blob into the store. A
// mismatch is an ErrInvalid error and the data is discarded.
func (w *Writer) Commit() error {
	defer w.Abort()
	if w.wantSize >= 0 && w.n != w.wantSize {
		return fmt.Errorf("blob %s: got %d bytes, expected %d: %w", w.want, w.n, w.wantSize, errdefs.ErrInvalid)
	}
	got := digest.NewDigest(digest.SHA256, w.h)
	if got != w.want {
		return fmt.Errorf("blob %s: content has digest %s: %w", w.want, got, errdefs.ErrInvalid)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("writing blob %s: %w", w.want, err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("writing blob %s: %w", w.want, err)
	}
	if err := os.Rename(w.f.Name(), w.s.Path(w.want)); err != nil {
		return err
	}
	w.done = true
	return nil
}

// Abort discards an uncommitted blob.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	w.f.Close()
	os.Remove(w.f.Name())
}
