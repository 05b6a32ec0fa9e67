package image

import (
	"encoding/json"
	"io"
	"sync"

	"github.com/berth-project/berth/internal/units"
)

// Progress is one step of a pull (or load) as docker reports it: a layer's
// state ("Pulling fs layer", "Downloading", "Verifying Checksum",
// "Download complete", "Pull complete", "Already exists") with byte counts,
// or an image-wide status line when ID names no layer.
type Progress struct {
	ID      string // short layer digest, or a tag for image-wide lines
	Status  string
	Current int64 // bytes so far, with Total, while downloading
	Total   int64
}

// jsonMessage is one line of Docker's JSON progress stream (the body of
// POST /images/create), as the docker CLI's jsonmessage package reads it.
type jsonMessage struct {
	ID             string          `json:"id,omitempty"`
	Status         string          `json:"status,omitempty"`
	ProgressDetail *progressDetail `json:"progressDetail,omitempty"`
	Progress       string          `json:"progress,omitempty"`
}

type progressDetail struct {
	Current int64 `json:"current"`
	Total   int64 `json:"total,omitempty"`
}

// JSONProgress returns a Progress callback that writes Docker's JSON
// progress messages to w, one per line; safe for concurrent use.
func JSONProgress(w io.Writer) func(Progress) {
	var mu sync.Mutex
	enc := json.NewEncoder(w)
	return func(p Progress) {
		m := jsonMessage{ID: p.ID, Status: p.Status}
		if p.Total > 0 || p.Current > 0 {
			m.ProgressDetail = &progressDetail{Current: p.Current, Total: p.Total}
			m.Progress = units.Bar(p.Current, p.Total, 50)
		}
		mu.Lock()
		defer mu.Unlock()
		enc.Encode(m)
		if f, ok := w.(interface{ Flush() }); ok {
			f.Flush()
		}
	}
}
