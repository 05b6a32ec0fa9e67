package apiserver

import (
	"net/http"

	"github.com/berth-project/berth/engine"
	ctypes "github.com/moby/moby/api/types/container"
	imagetypes "github.com/moby/moby/api/types/image"
	vtypes "github.com/moby/moby/api/types/volume"
)

// diskUsage is GET /system/df in the shape API ≤ 1.51 clients (the docker
// 28 CLI) read.
type diskUsage struct {
	LayersSize int64
	Images     []imagetypes.Summary
	Containers []ctypes.Summary
	Volumes    []vtypes.Volume
	BuildCache []struct{}
}

// systemDF reports what images, containers and volumes take on disk.
func (s *Server) systemDF(w http.ResponseWriter, r *http.Request) {
	imgs, err := s.b.Images.List()
	if err != nil {
		writeError(w, err)
		return
	}
	ctrs, err := s.b.Engine.List(engine.ListOptions{All: true, Size: true})
	if err != nil {
		writeError(w, err)
		return
	}
	users := map[string]int64{}
	for _, c := range ctrs {
		users[c.ImageID]++
	}
	du := diskUsage{Images: []imagetypes.Summary{}, Containers: ctrs, Volumes: []vtypes.Volume{}, BuildCache: []struct{}{}}
	for _, img := range imgs {
		du.LayersSize += img.Size
		sum := imagetypes.Summary{ID: img.ID.String(), RepoTags: familiarNames(img.RepoTags), RepoDigests: familiarNames(img.RepoDigests),
			Size: img.Size, SharedSize: 0, Containers: users[img.ID.String()], Labels: img.Config.Config.Labels}
		if img.Config.Created != nil {
			sum.Created = img.Config.Created.Unix()
		}
		du.Images = append(du.Images, sum)
	}
	vols, err := s.b.Volumes.List()
	if err != nil {
		writeError(w, err)
		return
	}
	for _, v := range vols {
		du.Volumes = append(du.Volumes, s.volumeJSON(v, true))
	}
	writeJSON(w, http.StatusOK, du)
}
