package logfile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func readAll(t *testing.T, path string, maxFiles int, o ReadOptions) []Entry {
	t.Helper()
	var out []Entry
	if err := Read(context.Background(), path, maxFiles, o, nil, func(e Entry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func logs(es []Entry) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString(e.Stream[:3] + ":" + e.Log)
	}
	return b.String()
}

func TestLinesPartialsAndStreams(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := Create(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write("stdout", []byte("one\ntw"))
	w.Write("stderr", []byte("err\n"))
	w.Write("stdout", []byte("o\nthree\n<&>\"\n"))
	w.Write("stdout", []byte("no newline"))
	w.Close()
	got := logs(readAll(t, path, 1, ReadOptions{Tail: -1}))
	want := "std:one\nstd:err\nstd:two\nstd:three\nstd:<&>\"\nstd:no newline"
	if got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
	raw, _ := os.ReadFile(path)
	if !strings.Contains(string(raw), `{"log":"<&>\"\n","stream":"stdout","time":"`) {
		t.Errorf("not docker's json-file form:\n%s", raw)
	}
	if got := logs(readAll(t, path, 1, ReadOptions{Tail: 2})); got != "std:<&>\"\nstd:no newline" {
		t.Errorf("tail 2: %q", got)
	}
	if got := readAll(t, path, 1, ReadOptions{Tail: 0}); len(got) != 0 {
		t.Errorf("tail 0: %v", got)
	}
}

func TestLongLineIsSplit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, _ := Create(path, Options{})
	long := strings.Repeat("x", MaxLine*2+10) + "\n"
	w.Write("stdout", []byte(long[:100]))
	w.Write("stdout", []byte(long[100:]))
	w.Close()
	es := readAll(t, path, 1, ReadOptions{Tail: -1})
	if len(es) != 3 || len(es[0].Log) != MaxLine || !strings.HasSuffix(es[2].Log, "\n") {
		t.Fatalf("split into %d entries", len(es))
	}
	var joined string
	for _, e := range es {
		joined += e.Log
	}
	if joined != long {
		t.Error("pieces do not make the line")
	}
}

func TestRotationKeepsMaxFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, _ := Create(path, Options{MaxSize: 1024, MaxFiles: 3})
	for i := range 200 {
		w.Write("stdout", fmt.Appendf(nil, "line %03d\n", i))
	}
	w.Close()
	for _, name := range []string{path, path + ".1", path + ".2"} {
		st, err := os.Stat(name)
		if err != nil || st.Size() > 1024 {
			t.Errorf("%s: %v size %d", name, err, st.Size())
		}
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Error("a fourth file was kept")
	}
	es := readAll(t, path, 3, ReadOptions{Tail: -1})
	if len(es) == 0 || es[len(es)-1].Log != "line 199\n" {
		t.Fatalf("last entry: %v", es)
	}
	for i := 1; i < len(es); i++ {
		if es[i].Log <= es[i-1].Log {
			t.Fatalf("out of order at %d: %q after %q", i, es[i].Log, es[i-1].Log)
		}
	}
	if _, err := ParseOptions("json-file", map[string]string{"max-file": "2"}); err == nil {
		t.Error("max-file without max-size accepted")
	}
	if _, err := ParseOptions("json-file", map[string]string{"colour": "red"}); err == nil || !strings.Contains(err.Error(), "unknown log opt 'colour'") {
		t.Errorf("unknown option: %v", err)
	}
	if o, err := ParseOptions("json-file", map[string]string{"max-size": "10m", "max-file": "3"}); err != nil || o.MaxSize != 10<<20 || o.MaxFiles != 3 {
		t.Errorf("10m/3: %+v %v", o, err)
	}
	if o, err := ParseOptions("local", nil); err != nil || o.MaxSize != 20<<20 || o.MaxFiles != 5 {
		t.Errorf("local defaults: %+v %v", o, err)
	}
	if o, err := ParseOptions("local", map[string]string{"max-size": "1m"}); err != nil || o.MaxSize != 1<<20 || o.MaxFiles != 5 {
		t.Errorf("local max-size=1m: %+v %v", o, err)
	}
}

// Follow delivers entries written later, across rotations (several
// between two looks, caught up from the rotated files), and ends once
// stopped is closed and everything is delivered.
func TestFollowAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, _ := Create(path, Options{MaxSize: 200, MaxFiles: 10})
	w.Write("stdout", []byte("first\n"))
	stopped := make(chan struct{})
	got := make(chan string, 100)
	done := make(chan error)
	go func() {
		done <- Read(context.Background(), path, 10, ReadOptions{Tail: -1, Follow: true}, stopped, func(e Entry) error {
			got <- e.Log
			return nil
		})
	}()
	if l := <-got; l != "first\n" {
		t.Fatalf("first: %q", l)
	}
	for i := range 20 {
		w.Write("stdout", fmt.Appendf(nil, "later %02d\n", i))
		time.Sleep(5 * time.Millisecond)
	}
	w.Close()
	close(stopped)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	close(got)
	var n int
	for l := range got {
		if want := fmt.Sprintf("later %02d\n", n); l != want {
			t.Fatalf("entry %d: %q, want %q", n, l, want)
		}
		n++
	}
	if n != 20 {
		t.Errorf("followed %d entries, want 20", n)
	}
}

// TestFullDiskDropsAndResumes: on a full filesystem lines are dropped,
// never half-written, the first loss is reported; once space returns a
// marker line says how many were lost and logging goes on.
func TestFullDiskDropsAndResumes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a small tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=256k"); err != nil {
		t.Fatal(err)
	}
	defer syscall.Unmount(dir, syscall.MNT_DETACH)
	path := filepath.Join(dir, "c-json.log")
	w, err := Create(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var reports []DropReport
	w.OnDrop(func(r DropReport) { reports = append(reports, r) })
	filler, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	filler.Write(make([]byte, 200<<10))
	filler.Close()
	var failed int
	for i := 0; i < 2000; i++ {
		if w.Write("stdout", []byte(fmt.Sprintf("line %04d %s\n", i, strings.Repeat("x", 40)))) != nil {
			failed++
		}
	}
	if failed == 0 || len(reports) != 1 || reports[0].Resumed {
		t.Fatalf("full disk: %d failed writes, reports %+v", failed, reports)
	}
	os.Remove(filepath.Join(dir, "filler"))
	if err := w.Write("stdout", []byte("after\n")); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if len(reports) != 2 || !reports[1].Resumed || reports[1].Lines != int64(failed) {
		t.Errorf("reports %+v, want a resume after %d lost lines", reports, failed)
	}
	es := readAll(t, path, 1, ReadOptions{Tail: -1})
	n := len(es)
	if n < 3 || es[n-1].Log != "after\n" || !strings.Contains(es[n-2].Log, fmt.Sprintf("berth: %d line(s) of output were not logged", failed)) {
		t.Errorf("the log ends with %q", logs(es[max(0, n-3):]))
	}
	for i, e := range es[:n-2] {
		if want := fmt.Sprintf("line %04d ", i); !strings.HasPrefix(e.Log, want) {
			t.Fatalf("entry %d is %q: lines kept must be the first ones, whole", i, e.Log)
		}
	}
}
