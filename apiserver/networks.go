package apiserver

import (
	"net/http"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/network"
)

// networkRoutes also holds the build cache's prune: both are steps of
// `docker system prune` for parts berthd does not have yet.
func (s *Server) networkRoutes() {
	s.mux.HandleFunc("POST /networks/prune", s.pruneNetworks)
	s.mux.HandleFunc("POST /build/prune", s.pruneBuildCache)
}

// pruneNetworks answers `docker network prune` and the network step of
// `docker system prune`. berthd has only its built-in network modes (no
// user-defined networks until bridge networking lands), so there is never
// a network to remove.
func (s *Server) pruneNetworks(w http.ResponseWriter, r *http.Request) {
	if _, err := parseFilters(r.URL.Query().Get("filters"), "until", "label", "label!"); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, network.PruneReport{NetworksDeleted: []string{}})
}

// pruneBuildCache answers the build-cache step of `docker system prune`:
// berthd builds no images, so it has no build cache.
func (s *Server) pruneBuildCache(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, build.CachePruneReport{CachesDeleted: []string{}})
}
