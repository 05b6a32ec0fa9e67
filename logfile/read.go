package logfile

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"strconv"
	"time"
)

// ReadOptions select the entries Read delivers.
type ReadOptions struct {
	Since, Until time.Time // zero: unbounded
	Tail         int       // the last Tail entries only; < 0: all
	Follow       bool      // after the existing entries, deliver new ones as they come
}

// pollInterval is how often a follower looks for new entries.
const pollInterval = 50 * time.Millisecond

// Read delivers the entries of the log at path (rotated files first) to fn.
// When following, it returns once ctx is done, fn fails, or stopped is
// closed and everything written before that has been delivered.
func Read(ctx context.Context, path string, maxFiles int, o ReadOptions, stopped <-chan struct{}, fn func(Entry) error) error {
	keep := func(e Entry) bool {
		return (o.Since.IsZero() || !e.Time.Before(o.Since)) && (o.Until.IsZero() || !e.Time.After(o.Until))
	}
	var tail []Entry
	emit := func(e Entry) error {
		if !keep(e) {
			return nil
		}
		if o.Tail >= 0 {
			if o.Tail == 0 {
				return nil
			}
			if len(tail) == o.Tail {
				tail = append(tail[:0], tail[1:]...)
			}
			tail = append(tail, e)
			return nil
		}
		return fn(e)
	}
	for i := maxFiles - 1; i >= 1; i-- {
		if err := readFile(path+"."+strconv.Itoa(i), emit); err != nil {
			return err
		}
	}
	cur, err := os.Open(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var r *bufio.Reader
	if cur != nil {
		defer func() { cur.Close() }()
		r = bufio.NewReader(cur)
		if _, err := readEntries(r, emit); err != nil {
			return err
		}
	}
	for _, e := range tail {
		if err := fn(e); err != nil {
			return err
		}
	}
	if !o.Follow {
		return nil
	}
	send := func(e Entry) error {
		if !o.Until.IsZero() && e.Time.After(o.Until) {
			return errStop
		}
		if keep(e) {
			return fn(e)
		}
		return nil
	}
	var pending []byte
	for {
		finished := false
		select {
		case <-ctx.Done():
			return nil
		case <-stopped:
			finished = true
		case <-time.After(pollInterval):
		}
		if cur == nil || rotated(cur, path) {
			// Finish the old file, then the files rotated after it,
			// then start on the new one.
			if r != nil {
				if _, err := readEntriesFrom(r, pending, send); err != nil {
					return ignoreStop(err)
				}
				for i := rotatedTo(cur, path, maxFiles) - 1; i >= 1; i-- {
					if err := readFile(path+"."+strconv.Itoa(i), send); err != nil {
						return ignoreStop(err)
					}
				}
				cur.Close()
			}
			if cur, err = os.Open(path); err != nil {
				cur, r = nil, nil
				if finished {
					return nil
				}
				continue
			}
			r, pending = bufio.NewReader(cur), nil
		}
		rest, err := readEntriesFrom(r, pending, send)
		if err != nil {
			return ignoreStop(err)
		}
		pending = rest
		if finished {
			return nil
		}
	}
}

var errStop = errors.New("stop")

func ignoreStop(err error) error {
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

// rotated reports whether path now names another file than cur.
func rotated(cur *os.File, path string) bool {
	a, err1 := cur.Stat()
	b, err2 := os.Stat(path)
	if err1 != nil || err2 != nil {
		return err2 == nil
	}
	if !os.SameFile(a, b) {
		return true
	}
	// Truncated in place (max-file 1).
	off, _ := cur.Seek(0, io.SeekCurrent)
	return b.Size() < off
}

// rotatedTo finds where the rotated file cur now is: k for <path>.k, 0 if
// it is still <path> (truncated in place), maxFiles if it was dropped.
func rotatedTo(cur *os.File, path string, maxFiles int) int {
	st, err := cur.Stat()
	if err != nil {
		return maxFiles
	}
	if b, err := os.Stat(path); err == nil && os.SameFile(st, b) {
		return 0
	}
	for k := 1; k < maxFiles; k++ {
		if b, err := os.Stat(path + "." + strconv.Itoa(k)); err == nil && os.SameFile(st, b) {
			return k
		}
	}
	return maxFiles
}

func readFile(path string, fn func(Entry) error) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = readEntries(bufio.NewReader(f), fn)
	return err
}

func readEntries(r *bufio.Reader, fn func(Entry) error) ([]byte, error) {
	return readEntriesFrom(r, nil, fn)
}

// readEntriesFrom decodes lines until EOF and returns an unfinished last
// line (a write seen half-done), to be completed by the next call.
func readEntriesFrom(r *bufio.Reader, pending []byte, fn func(Entry) error) ([]byte, error) {
	for {
		line, err := r.ReadBytes('\n')
		pending = append(pending, line...)
		if err == io.EOF {
			return pending, nil
		}
		if err != nil {
			return nil, err
		}
		var e Entry
		if json.Unmarshal(pending, &e) == nil {
			if err := fn(e); err != nil {
				return nil, err
			}
		}
		pending = pending[:0]
	}
}
