package image

import (
	"sync"

	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// pinTable counts, per digest, the operations in progress that add or read
// that content: a blob, or an unpacked layer by its diffID. The collector
// keeps whatever is pinned, so an operation never waits for a remove or a
// prune, nor they for it (containerd's leases are the model).
//
// Contract: content is pinned before the operation first looks for it or
// makes it visible (a blob's rename into the store, a layer's rename into
// layers/), and unpinned only after the image record naming it is
// committed. mu is held by a sweep of the collector from its read of the
// records to its last deletion, so a pin either waits for the sweep or is
// seen by it.
type pinTable struct {
	mu sync.Mutex
	n  map[digest.Digest]int
	// kept is what the last sweep left, unreferenced, because it was
	// pinned; the release that unpins any of it sweeps again.
	kept map[digest.Digest]bool
}

// pinned says whether d is pinned, and if so records that a sweep kept
// it. The caller holds mu.
func (p *pinTable) pinned(d digest.Digest) bool {
	if p.n[d] == 0 {
		return false
	}
	if p.kept == nil {
		p.kept = map[digest.Digest]bool{}
	}
	p.kept[d] = true
	return true
}

// lease is one operation's pins.
type lease struct {
	s    *Store
	held []digest.Digest
}

func (s *Store) newLease() *lease { return &lease{s: s} }

// pin adds ds to the lease. A sweep in progress finishes first.
func (l *lease) pin(ds ...digest.Digest) {
	p := &l.s.pins
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == nil {
		p.n = map[digest.Digest]int{}
	}
	for _, d := range ds {
		if d == "" {
			continue
		}
		p.n[d]++
		l.held = append(l.held, d)
	}
}

// release unpins everything the lease holds. If a sweep kept content for a
// pin that is now gone, the store is swept again, so that a remove or
// prune that ran during the operation leaves nothing behind.
func (l *lease) release() {
	p := &l.s.pins
	p.mu.Lock()
	again := false
	for _, d := range l.held {
		if p.n[d]--; p.n[d] <= 0 {
			delete(p.n, d)
			again = again || p.kept[d]
		}
	}
	l.held = nil
	p.mu.Unlock()
	if again {
		l.s.gcMu.Lock()
		defer l.s.gcMu.Unlock()
		l.s.collect()
	}
}

// pinImage pins image id's config, manifest, blobs and layers to le and
// returns its record. The record is read again once the pins hold: an
// image removed before then may have lost its content to a sweep, and is
// reported not found.
func (s *Store) pinImage(le *lease, id digest.Digest) (*imageRecord, error) {
	var rec *imageRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		rec, err = loadRecord(tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	le.pin(id, rec.Manifest)
	for _, l := range rec.Layers {
		le.pin(l.Digest, l.DiffID)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		_, err := loadRecord(tx, id)
		return err
	})
	return rec, err
}
