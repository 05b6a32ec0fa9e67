package engine

import (
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"

	ctypes "github.com/moby/moby/api/types/container"
	bolt "go.etcd.io/bbolt"
)

func testDB(t *testing.T) *Engine {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "containers.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := &Engine{db: db, ctrs: map[string]*ctr{}, names: map[string]string{}}
	if err := e.load(); err != nil {
		t.Fatal(err)
	}
	return e
}

func stored(t *testing.T, e *Engine, id string) *Record {
	t.Helper()
	var r *Record
	err := e.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketContainers).Get([]byte(id)); v != nil {
			r = &Record{}
			return json.Unmarshal(v, r)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Records are written after the engine lock is released, so writes may
// reach the store out of order: the newest record taken wins, and a
// deleted record stays deleted.
func TestRecordWritesNeverGoBack(t *testing.T) {
	e := testDB(t)
	c := newCtr(Record{ID: "c1", Name: "/one", State: State{Status: ctypes.StateCreated}})
	e.mu.Lock()
	older := e.takeRecord(c)
	c.rec.State.Status = ctypes.StateRunning
	newer := e.takeRecord(c)
	e.mu.Unlock()
	if err := e.write(newer); err != nil {
		t.Fatal(err)
	}
	if err := e.write(older); err != nil {
		t.Fatal(err)
	}
	if r := stored(t, e, "c1"); r == nil || r.State.Status != ctypes.StateRunning {
		t.Fatalf("stored %+v, want the newer (running) record", r)
	}
	if err := e.deleteRecord(c); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	late := e.takeRecord(c)
	e.mu.Unlock()
	if err := e.write(late); err != nil {
		t.Fatal(err)
	}
	if r := stored(t, e, "c1"); r != nil {
		t.Fatalf("a write after the delete brought the record back: %+v", r)
	}
}

// Many writers at once: the store ends with the last record taken.
func TestRecordWritesConcurrent(t *testing.T) {
	e := testDB(t)
	c := newCtr(Record{ID: "c2", Name: "/two"})
	var wg sync.WaitGroup
	for i := 1; i <= 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.mu.Lock()
			c.rec.State.Pid = i
			w := e.takeRecord(c)
			e.mu.Unlock()
			if err := e.write(w); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if r := stored(t, e, "c2"); r == nil || r.State.Pid != c.rec.State.Pid {
		t.Fatalf("stored %+v, want pid %d (the last record taken)", r, c.rec.State.Pid)
	}
}

// A panic while the engine lock is held (through withCtr) leaves it free:
// one failed request never wedges the daemon.
func TestPanicUnderLockReleasesIt(t *testing.T) {
	e := testDB(t)
	c := newCtr(Record{ID: "c3", Name: "/three"})
	e.ctrs["c3"], e.names["/three"] = c, "c3"
	func() {
		defer func() { _ = recover() }()
		_ = e.withCtr("three", func(*ctr) error { panic("boom") })
	}()
	if !e.mu.TryLock() {
		t.Fatal("the engine lock is still held after a panic under it")
	}
	e.mu.Unlock()
	if err := e.withCtr("three", func(*ctr) error { return nil }); err != nil {
		t.Errorf("a request after the panic: %v", err)
	}
}
