package apiserver

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/berth-project/berth/volume"
	"github.com/moby/moby/api/types/events"
	vtypes "github.com/moby/moby/api/types/volume"
)

func (s *Server) volumeRoutes() {
	s.mux.HandleFunc("GET /volumes", s.listVolumes)
	s.mux.HandleFunc("POST /volumes/create", s.createVolume)
	s.mux.HandleFunc("POST /volumes/prune", s.pruneVolumes)
	s.mux.HandleFunc("GET /volumes/{name}", s.inspectVolume)
	s.mux.HandleFunc("DELETE /volumes/{name}", s.removeVolume)
}

// volumeJSON is docker's shape of a volume; usage only when asked (it
// walks the data).
func (s *Server) volumeJSON(v *volume.Volume, usage bool) vtypes.Volume {
	out := vtypes.Volume{
		Name: v.Name, Driver: v.Driver, Mountpoint: v.Mountpoint, CreatedAt: v.CreatedAt.Format(time.RFC3339),
		Labels: v.Labels, Options: v.Options, Scope: "local",
	}
	if usage {
		out.UsageData = &vtypes.UsageData{Size: s.b.Volumes.Size(v), RefCount: int64(s.b.Engine.VolumeRefCount(v.Name))}
	}
	return out
}

func (s *Server) createVolume(w http.ResponseWriter, r *http.Request) {
	var req vtypes.CreateRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	v, err := s.b.Volumes.Create(volume.CreateOptions{Name: req.Name, Driver: req.Driver, Labels: req.Labels, Options: req.DriverOpts})
	if err != nil {
		writeError(w, err)
		return
	}
	s.b.Engine.Emit(events.VolumeEventType, events.ActionCreate, v.Name, map[string]string{"driver": "local"})
	writeJSON(w, http.StatusCreated, s.volumeJSON(v, false))
}

func (s *Server) listVolumes(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilters(r.URL.Query().Get("filters"), "dangling", "name", "label", "driver")
	if err != nil {
		writeError(w, err)
		return
	}
	dangling, err := f.bool("dangling")
	if err != nil {
		writeError(w, err)
		return
	}
	vols, err := s.b.Volumes.List()
	if err != nil {
		writeError(w, err)
		return
	}
	resp := vtypes.ListResponse{Volumes: []vtypes.Volume{}, Warnings: []string{}}
	for _, v := range vols {
		if dangling != nil && (s.b.Engine.VolumeRefCount(v.Name) == 0) != *dangling {
			continue
		}
		if len(f["name"]) > 0 && !slices.ContainsFunc(f["name"], func(n string) bool { return strings.Contains(v.Name, n) }) {
			continue
		}
		if len(f["driver"]) > 0 && !slices.Contains(f["driver"], v.Driver) {
			continue
		}
		if slices.ContainsFunc(f["label"], func(l string) bool {
			k, val, has := strings.Cut(l, "=")
			got, ok := v.Labels[k]
			return !ok || has && got != val
		}) {
			continue // every label filter must match
		}
		resp.Volumes = append(resp.Volumes, s.volumeJSON(v, false))
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) inspectVolume(w http.ResponseWriter, r *http.Request) {
	v, err := s.b.Volumes.Get(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.volumeJSON(v, true))
}

func (s *Server) removeVolume(w http.ResponseWriter, r *http.Request) {
	if err := s.b.Engine.RemoveVolume(r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	s.b.Engine.Emit(events.VolumeEventType, events.ActionDestroy, r.PathValue("name"), map[string]string{"driver": "local"})
	w.WriteHeader(http.StatusNoContent)
}

// pruneVolumes removes unused anonymous volumes, or every unused one with
// the filter all=true (docker 23's behaviour).
func (s *Server) pruneVolumes(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilters(r.URL.Query().Get("filters"), "all", "label")
	if err != nil {
		writeError(w, err)
		return
	}
	all, err := f.bool("all")
	if err != nil {
		writeError(w, err)
		return
	}
	deleted, space, err := s.b.Engine.PruneVolumes(all != nil && *all)
	if err != nil {
		writeError(w, err)
		return
	}
	if deleted == nil {
		deleted = []string{}
	}
	writeJSON(w, http.StatusOK, vtypes.PruneReport{VolumesDeleted: deleted, SpaceReclaimed: space})
}
