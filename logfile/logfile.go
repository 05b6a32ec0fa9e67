// Package logfile writes and reads container logs in docker's json-file
// format: one JSON object per line, {"log": "...", "stream": "stdout",
// "time": "RFC 3339 with nanoseconds"}, with size-based rotation (the
// current file is <path>, older ones <path>.1 … <path>.<max-file - 1>).
//
// A line longer than MaxLine is split into several entries; the last piece
// of a line ends in "\n", as in docker.
package logfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"
	"time"
)

// MaxLine is the longest log entry; longer lines are split.
const MaxLine = 16 * 1024

// Entry is one log line.
type Entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// Options are the json-file log driver's options.
type Options struct {
	MaxSize  int64 // bytes of the current file before it is rotated; 0: no rotation
	MaxFiles int   // files kept, the current one included; < 1 means 1
	// Format is "" for json-file lines or FormatCRI.
	Format string `json:",omitempty"`
}

// FormatCRI is the Kubernetes CRI's log format, one line per entry:
// "<RFC 3339 nano time> <stream> <F|P> <text>\n", P marking a piece of a
// line split at MaxLine, F its last piece or a whole line.
const FormatCRI = "cri"

// ParseOptions reads docker's log-opt map (max-size "10m", max-file "3")
// for driver (json-file, or local, whose defaults are dockerd's: 20 MB
// files, 5 of them). Unknown options are an error naming them.
func ParseOptions(driver string, opts map[string]string) (Options, error) {
	var o Options
	if driver == "local" {
		o = Options{MaxSize: 20 << 20, MaxFiles: 5}
	}
	for k, v := range opts {
		switch k {
		case "max-size":
			n, err := ParseSize(v)
			if err != nil || n <= 0 {
				return o, fmt.Errorf("log-opt max-size=%q: want a positive size such as 10m", v)
			}
			o.MaxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return o, fmt.Errorf("log-opt max-file=%q: want a positive integer", v)
			}
			o.MaxFiles = n
		default:
			return o, fmt.Errorf("unknown log opt '%s' for %s log driver", k, driver)
		}
	}
	if o.MaxFiles > 1 && o.MaxSize == 0 {
		return o, fmt.Errorf("log-opt max-file=%d needs max-size", o.MaxFiles)
	}
	return o, nil
}

// ParseSize reads a size with docker's units: 100, 10k, 10m, 1g (powers of
// 1024, an optional trailing "b" ignored).
func ParseSize(s string) (int64, error) {
	t := bytes.ToLower(bytes.TrimSpace([]byte(s)))
	t = bytes.TrimSuffix(t, []byte("b"))
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		}
		if mult != 1 {
			t = t[:n-1]
		}
	}
	f, err := strconv.ParseFloat(string(t), 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return int64(f * float64(mult)), nil
}

// Writer appends entries to a log file. It is safe for concurrent use by
// the readers of several streams.
type Writer struct {
	mu      sync.Mutex
	path    string
	o       Options
	f       *os.File
	size    int64
	partial map[string][]byte // an unfinished line per stream
	buf     bytes.Buffer
	// dropped counts lines not written since the last write that worked
	// (a full disk); dropErr is why.
	dropped int64
	dropErr error
	onDrop  func(DropReport)
}

// DropReport tells that lines stopped being logged (Resumed false: the
// first loss, with its error) or are logged again (Resumed true: how many
// were lost).
type DropReport struct {
	Resumed bool
	Lines   int64
	Err     error
}

// OnDrop sets fn to hear when lines start being dropped and when writing
// resumes; fn is called with the writer's lock held and must not block.
func (w *Writer) OnDrop(fn func(DropReport)) {
	w.mu.Lock()
	w.onDrop = fn
	w.mu.Unlock()
}

// Create opens (appending to) the log file at path.
func Create(path string, o Options) (*Writer, error) {
	if o.MaxFiles < 1 {
		o.MaxFiles = 1
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Writer{path: path, o: o, f: f, size: st.Size(), partial: map[string][]byte{}}, nil
}

// Write logs p, output of stream, as complete lines; an unfinished last
// line waits for its end (or for MaxLine bytes, or Close). A line that
// cannot be written (a full disk) is dropped and counted, never retried,
// so the container is never held up; when writing works again a marker
// line says how many were lost. The first error is returned.
func (w *Writer) Write(stream string, p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now().UTC()
	pend := w.partial[stream]
	var first error
	keep := func(err error) {
		if first == nil {
			first = err
		}
	}
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			pend = append(pend, p...)
			for len(pend) >= MaxLine {
				keep(w.entry(stream, pend[:MaxLine], now))
				pend = append(pend[:0], pend[MaxLine:]...)
			}
			break
		}
		line := p[:i+1]
		if len(pend) > 0 {
			pend = append(pend, line...)
			line = pend
		}
		for len(line) > MaxLine {
			keep(w.entry(stream, line[:MaxLine], now))
			line = line[MaxLine:]
		}
		keep(w.entry(stream, line, now))
		pend = pend[:0]
		p = p[i+1:]
	}
	w.partial[stream] = pend
	return first
}

// entry writes one JSON line, rotating first if it would overflow
// MaxSize; after lost lines, the marker first.
func (w *Writer) entry(stream string, line []byte, t time.Time) error {
	if w.dropped > 0 {
		lost, why := w.dropped, w.dropErr
		msg := fmt.Sprintf("berth: %d line(s) of output were not logged: %v\n", lost, why)
		if err := w.write("stderr", []byte(msg), t); err != nil {
			return w.drop(err)
		}
		w.dropped, w.dropErr = 0, nil
		if w.onDrop != nil {
			w.onDrop(DropReport{Resumed: true, Lines: lost, Err: why})
		}
	}
	if err := w.write(stream, line, t); err != nil {
		return w.drop(err)
	}
	return nil
}

// drop counts a line that could not be written.
func (w *Writer) drop(err error) error {
	w.dropped++
	if w.dropped == 1 {
		w.dropErr = err
		var pe *fs.PathError
		if errors.As(err, &pe) { // the log's own path says nothing in it
			w.dropErr = pe.Err
		}
		if w.onDrop != nil {
			w.onDrop(DropReport{Lines: 1, Err: err})
		}
	}
	return err
}

// write appends one entry; a write cut short is undone, so the file holds
// whole lines only.
func (w *Writer) write(stream string, line []byte, t time.Time) error {
	w.buf.Reset()
	if w.o.Format == FormatCRI {
		tag, text := "P ", line
		if n := len(line); n > 0 && line[n-1] == '\n' {
			tag, text = "F ", line[:n-1]
		}
		w.buf.WriteString(t.Format(time.RFC3339Nano) + " " + stream + " " + tag)
		w.buf.Write(text)
		w.buf.WriteByte('\n')
	} else {
		enc := json.NewEncoder(&w.buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(Entry{Log: string(line), Stream: stream, Time: t}); err != nil {
			return err
		}
	}
	if w.o.MaxSize > 0 && w.size > 0 && w.size+int64(w.buf.Len()) > w.o.MaxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(w.buf.Bytes())
	if err != nil {
		if n > 0 {
			_ = w.f.Truncate(w.size)
		}
		return err
	}
	w.size += int64(n)
	return nil
}

// rotate shifts <path>.i to <path>.i+1, dropping the oldest, and starts an
// empty <path>.
func (w *Writer) rotate() error {
	if w.o.MaxFiles == 1 {
		if err := w.f.Truncate(0); err != nil {
			return err
		}
		w.size = 0
		return nil
	}
	w.f.Close()
	for i := w.o.MaxFiles - 1; i >= 1; i-- {
		from := w.path
		if i > 1 {
			from = w.path + "." + strconv.Itoa(i-1)
		}
		if err := os.Rename(from, w.path+"."+strconv.Itoa(i)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	w.f, w.size = f, 0
	return nil
}

// Reopen closes the file and opens (creates) its path anew, for a file
// a log rotator moved away.
func (w *Writer) Reopen() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.partial == nil {
		return errors.New("log file: closed")
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f.Close()
	w.f, w.size = f, st.Size()
	return nil
}

// Close writes unfinished lines as they are and closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for stream, pend := range w.partial {
		if len(pend) > 0 {
			_ = w.entry(stream, pend, time.Now().UTC())
		}
	}
	w.partial = nil
	return w.f.Close()
}
