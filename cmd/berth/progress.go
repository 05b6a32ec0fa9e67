package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/berth-project/berth/internal/units"
)

// progressPrinter shows pull progress as docker does: on a terminal one
// line per layer, redrawn in place with a bar; elsewhere one line per
// change of state (no byte counts).
type progressPrinter struct {
	mu    sync.Mutex
	w     io.Writer
	tty   bool
	ids   []string // layer lines, in order of first appearance
	state map[string]string
}

func newProgressPrinter(w io.Writer, tty bool) *progressPrinter {
	return &progressPrinter{w: w, tty: tty, state: map[string]string{}}
}

// pullEvent is one line of a pull's progress stream.
type pullEvent struct {
	ID      string // short layer digest, or a tag for image-wide lines
	Status  string
	Current int64 // bytes so far, with Total, while downloading
	Total   int64
}

// Show prints one event.
func (p *progressPrinter) Show(ev pullEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	layer := len(ev.ID) == 12 && ev.Status != "" && !isImageLine(ev.Status)
	if !layer {
		if ev.ID != "" {
			fmt.Fprintf(p.w, "%s: %s\n", ev.ID, ev.Status)
		} else {
			fmt.Fprintln(p.w, ev.Status)
		}
		return
	}
	line := ev.ID + ": " + ev.Status
	if ev.Total > 0 {
		line += " " + units.Bar(ev.Current, ev.Total, 40)
	}
	i := slices.Index(p.ids, ev.ID)
	if !p.tty {
		if p.state[ev.ID] != ev.Status {
			p.state[ev.ID] = ev.Status
			fmt.Fprintf(p.w, "%s: %s\n", ev.ID, ev.Status)
		}
		return
	}
	if i < 0 {
		p.ids = append(p.ids, ev.ID)
		fmt.Fprintf(p.w, "%s\n", line)
		return
	}
	up := len(p.ids) - i
	// Up to the layer's line, clear it, write, and back down.
	fmt.Fprintf(p.w, "\x1b[%dA\x1b[2K\r%s\x1b[%dB\r", up, line, up)
}

func isImageLine(status string) bool {
	for _, prefix := range []string{"Pulling from ", "Digest: ", "Status: "} {
		if strings.HasPrefix(status, prefix) {
			return true
		}
	}
	return false
}
