package apiserver

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/image"
	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"
)

func (s *Server) imageRoutes() {
	s.mux.HandleFunc("GET /images/json", s.listImages)
	s.mux.HandleFunc("POST /images/create", s.createImage)
	s.mux.HandleFunc("POST /images/load", s.loadImages)
	s.mux.HandleFunc("GET /images/get", s.saveImages)
	s.mux.HandleFunc("POST /images/prune", s.pruneImages)
	s.mux.HandleFunc("POST /auth", s.login)
	// Names contain slashes ("127.0.0.1:5000/app"), so the rest is routed
	// by suffix.
	s.mux.HandleFunc("/images/", s.imageByName)
}

func (s *Server) imageByName(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/images/")
	switch {
	case r.Method == http.MethodDelete:
		s.removeImage(w, r, rest)
	case r.Method == http.MethodGet && strings.HasSuffix(rest, "/json"):
		s.inspectImage(w, r, strings.TrimSuffix(rest, "/json"))
	case r.Method == http.MethodGet && strings.HasSuffix(rest, "/history"):
		s.imageHistory(w, r, strings.TrimSuffix(rest, "/history"))
	case r.Method == http.MethodGet && strings.HasSuffix(rest, "/get"):
		s.save(w, []string{strings.TrimSuffix(rest, "/get")})
	case r.Method == http.MethodPost && strings.HasSuffix(rest, "/tag"):
		s.tagImage(w, r, strings.TrimSuffix(rest, "/tag"))
	case r.Method == http.MethodPost && strings.HasSuffix(rest, "/push"):
		s.pushImage(w, r, strings.TrimSuffix(rest, "/push"))
	default:
		writeJSON(w, http.StatusNotFound, message("page not found"))
	}
}

func familiarNames(names []string) []string {
	out := []string{}
	for _, n := range names {
		out = append(out, image.Familiar(n))
	}
	return out
}

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilters(r.URL.Query().Get("filters"), "dangling", "reference", "label")
	if err != nil {
		writeError(w, err)
		return
	}
	imgs, err := s.b.Images.List()
	if err != nil {
		writeError(w, err)
		return
	}
	out := []imagetypes.Summary{}
	all := boolParam(r, "all")
	for _, img := range imgs {
		if !all && len(img.RepoTags) == 0 && img.Children > 0 {
			continue // an intermediate image of a build, as docker hides them
		}
		tags, digests, ok, err := f.matchImage(img)
		if err != nil {
			writeError(w, err)
			return
		}
		if !ok {
			continue
		}
		sum := imagetypes.Summary{ID: img.ID.String(), ParentID: img.Parent.String(), RepoTags: tags, RepoDigests: digests,
			Size: img.Size, SharedSize: -1, Containers: -1, Labels: img.Config.Config.Labels}
		if img.Config.Created != nil {
			sum.Created = img.Config.Created.Unix()
		}
		if sum.Labels == nil {
			sum.Labels = map[string]string{}
		}
		out = append(out, sum)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) inspectImage(w http.ResponseWriter, r *http.Request, name string) {
	img, ok := s.getImage(w, name)
	if !ok {
		return
	}
	resp := imagetypes.InspectResponse{
		ID: img.ID.String(), RepoTags: familiarNames(img.RepoTags), RepoDigests: familiarNames(img.RepoDigests),
		Config:       &img.Config.Config,
		Architecture: img.Config.Architecture, Variant: img.Config.Variant, Os: img.Config.OS,
		Size:        img.Size,
		Author:      img.Config.Author,
		GraphDriver: &storage.DriverData{Name: "overlay2", Data: map[string]string{}},
		RootFS:      imagetypes.RootFS{Type: "layers"},
	}
	if img.Config.Created != nil {
		resp.Created = img.Config.Created.Format("2006-01-02T15:04:05.999999999Z07:00")
	}
	for _, l := range img.Layers {
		resp.RootFS.Layers = append(resp.RootFS.Layers, l.DiffID.String())
	}
	if h := img.Config.History; len(h) > 0 {
		resp.Comment = h[len(h)-1].Comment
	}
	writeJSON(w, http.StatusOK, resp)
}

// getImage finds an image or answers 404 in dockerd's words.
func (s *Server) getImage(w http.ResponseWriter, name string) (*image.Image, bool) {
	img, err := s.b.Images.Get(name)
	if err != nil {
		if errdefs.NotFound(err) {
			//lint:ignore ST1005 dockerd's words, which clients match
			err = fmt.Errorf("No such image: %s: %w", name, errdefs.ErrNotFound)
		}
		writeError(w, err)
		return nil, false
	}
	return img, true
}

func (s *Server) imageHistory(w http.ResponseWriter, r *http.Request, name string) {
	img, ok := s.getImage(w, name)
	if !ok {
		return
	}
	out := []imagetypes.HistoryResponseItem{}
	hist := img.Config.History
	// As dockerd: each entry that made a layer shows that layer's size;
	// the newest entries are named by the images of the build chain (the
	// image, its parent, …) as far as the store has it.
	layer := len(img.Layers) - 1
	chain := img
	for i := len(hist) - 1; i >= 0; i-- {
		h := hist[i]
		item := imagetypes.HistoryResponseItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: []string{}}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		if !h.EmptyLayer && layer >= 0 {
			item.Size = img.Layers[layer].Unpacked
			layer--
		}
		if chain != nil {
			item.ID, item.Tags = chain.ID.String(), familiarNames(chain.RepoTags)
			chain = s.parentOf(chain)
		}
		out = append(out, item)
	}
	writeJSON(w, http.StatusOK, out)
}

// imageEvent records an image event as dockerd's: the actor and its
// name attribute.
func (s *Server) imageEvent(action events.Action, id, name string) {
	s.b.Engine.Emit(events.ImageEventType, action, id, map[string]string{"name": name})
}

// mustFull is ref's full name, or ref itself when it does not parse.
func mustFull(ref string) string {
	if full, err := image.FullName(ref); err == nil {
		return full
	}
	return ref
}

// parentOf is the image a build step made img on, nil if none is known.
func (s *Server) parentOf(img *image.Image) *image.Image {
	if img.Parent == "" {
		return nil
	}
	p, err := s.b.Images.Get(img.Parent.String())
	if err != nil {
		return nil
	}
	return p
}

func (s *Server) tagImage(w http.ResponseWriter, r *http.Request, name string) {
	target := r.URL.Query().Get("repo")
	if tag := r.URL.Query().Get("tag"); tag != "" {
		target += ":" + tag
	}
	if err := s.b.Images.Tag(name, target); err != nil {
		writeError(w, err)
		return
	}
	if img, err := s.b.Images.Get(target); err == nil {
		s.imageEvent(events.ActionTag, img.ID.String(), image.Familiar(mustFull(target)))
	}
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) removeImage(w http.ResponseWriter, r *http.Request, name string) {
	before, _ := s.b.Images.Get(name)
	res, err := s.b.Images.Remove(name, boolParam(r, "force"))
	if err != nil {
		if errdefs.NotFound(err) {
			//lint:ignore ST1005 dockerd's words, which clients match
			err = fmt.Errorf("No such image: %s: %w", name, errdefs.ErrNotFound)
		}
		writeError(w, err)
		return
	}
	for range res.Untagged { // dockerd names the image, by ID
		if before != nil {
			s.imageEvent(events.ActionUnTag, before.ID.String(), before.ID.String())
		}
	}
	for _, d := range res.Deleted {
		s.imageEvent(events.ActionDelete, d.String(), d.String())
	}
	writeJSON(w, http.StatusOK, deleteResponses(res.Untagged, res.Deleted))
}

func deleteResponses[D fmt.Stringer](untagged []string, deleted []D) []imagetypes.DeleteResponse {
	out := []imagetypes.DeleteResponse{}
	for _, u := range untagged {
		out = append(out, imagetypes.DeleteResponse{Untagged: image.Familiar(u)})
	}
	for _, d := range deleted {
		out = append(out, imagetypes.DeleteResponse{Deleted: d.String()})
	}
	return out
}

func (s *Server) pruneImages(w http.ResponseWriter, r *http.Request) {
	// dangling=false is `docker image prune -a`.
	f, err := parseFilters(r.URL.Query().Get("filters"), "dangling")
	if err != nil {
		writeError(w, err)
		return
	}
	dangling, err := f.bool("dangling")
	if err != nil {
		writeError(w, err)
		return
	}
	all := dangling != nil && !*dangling
	res, err := s.b.Images.Prune(all)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, imagetypes.PruneReport{ImagesDeleted: deleteResponses(res.Untagged, res.Deleted), SpaceReclaimed: uint64(res.Reclaimed)})
}

// flushWriter flushes after every write, so progress reaches the client
// as it happens.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

// streamError ends a JSON progress stream with an error, as dockerd does:
// the status is already 200, so the error travels inside the stream.
func streamError(w io.Writer, err error) {
	json.NewEncoder(w).Encode(map[string]any{"errorDetail": map[string]string{"message": err.Error()}, "error": err.Error()})
}

func (s *Server) createImage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("fromSrc") != "" {
		s.importImage(w, r)
		return
	}
	ref := q.Get("fromImage")
	if tag := q.Get("tag"); tag != "" {
		sep := ":"
		if strings.HasPrefix(tag, "sha256:") {
			sep = "@"
		}
		ref += sep + tag
	}
	full, err := image.FullName(ref)
	if err != nil {
		writeError(w, err)
		return
	}
	po := image.PullOptions{}
	if p := q.Get("platform"); p != "" {
		if po.Platform, err = v1.ParsePlatform(p); err != nil {
			writeError(w, fmt.Errorf("platform %q: %w: %v", p, errdefs.ErrInvalid, err))
			return
		}
	}
	if po.Auth, err = registryAuth(r.Header.Get("X-Registry-Auth")); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fw := flushWriter{w}
	show := image.JSONProgress(fw)
	var fetched atomic.Bool
	po.Progress = func(p image.Progress) {
		if p.Status == "Pull complete" {
			fetched.Store(true)
		}
		show(p)
	}
	if _, err := s.b.Images.Pull(r.Context(), ref, po); err != nil {
		streamError(fw, err)
		return
	}
	status := "Status: Image is up to date for "
	if fetched.Load() {
		status = "Status: Downloaded newer image for "
	}
	show(image.Progress{Status: status + image.Familiar(full)})
	s.imageEvent(events.ActionPull, image.Familiar(full), image.Familiar(full))
}

// login serves docker login: the credentials are checked against the
// registry; the CLI keeps them and sends them with each pull and push.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var a struct {
		Username, Password, Auth, ServerAddress, IdentityToken, RegistryToken string
	}
	if err := decodeBody(r, &a); err != nil {
		writeError(w, err)
		return
	}
	cfg := authn.AuthConfig{Username: a.Username, Password: a.Password, Auth: a.Auth, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
	if err := s.b.Images.Login(r.Context(), a.ServerAddress, cfg); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"Status": "Login Succeeded"})
}

// pushImage serves docker push: a JSON progress stream as dockerd's,
// ending with the tag's digest and size (also as "aux" for the CLI).
func (s *Server) pushImage(w http.ResponseWriter, r *http.Request, name string) {
	ref := name
	if tag := r.URL.Query().Get("tag"); tag != "" {
		ref += ":" + tag
	}
	full, err := image.FullName(ref)
	if err != nil {
		writeError(w, err)
		return
	}
	auth, err := registryAuth(r.Header.Get("X-Registry-Auth"))
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fw := flushWriter{w}
	show := image.JSONProgress(fw)
	repo, _, _ := strings.Cut(image.Familiar(full), "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	show(image.Progress{Status: "The push refers to repository [" + repo + "]"})
	res, err := s.b.Images.Push(r.Context(), ref, image.PushOptions{Auth: auth, Progress: show})
	if err != nil {
		streamError(fw, err)
		return
	}
	show(image.Progress{Status: fmt.Sprintf("%s: digest: %s size: %d", res.Tag, res.Digest, res.Size)})
	json.NewEncoder(fw).Encode(map[string]any{"progressDetail": map[string]any{}, "aux": map[string]any{"Tag": res.Tag, "Digest": res.Digest, "Size": res.Size}})
	s.imageEvent(events.ActionPush, image.Familiar(full), image.Familiar(full))
}

// registryAuth decodes X-Registry-Auth (base64url JSON); "{}" or none
// means the store's own keychain.
func registryAuth(h string) (*authn.AuthConfig, error) {
	if h == "" {
		return nil, nil
	}
	raw, err := base64.URLEncoding.DecodeString(h)
	if err != nil {
		if raw, err = base64.RawURLEncoding.DecodeString(h); err != nil {
			return nil, fmt.Errorf("X-Registry-Auth: %w: %v", errdefs.ErrInvalid, err)
		}
	}
	var a struct {
		Username, Password, Auth, IdentityToken, RegistryToken string
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("X-Registry-Auth: %w: %v", errdefs.ErrInvalid, err)
	}
	if a.Username == "" && a.Password == "" && a.Auth == "" && a.IdentityToken == "" && a.RegistryToken == "" {
		return nil, nil
	}
	return &authn.AuthConfig{Username: a.Username, Password: a.Password, Auth: a.Auth, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}, nil
}

func (s *Server) importImage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("fromSrc") != "-" {
		writeError(w, fmt.Errorf("fromSrc %q: only \"-\" (the request body) is supported: %w", q.Get("fromSrc"), errdefs.ErrInvalid))
		return
	}
	ref := q.Get("repo")
	if tag := q.Get("tag"); ref != "" && tag != "" {
		ref += ":" + tag
	}
	if ref != "" {
		if err := s.b.Images.CheckName(ref); err != nil {
			writeError(w, err)
			return
		}
	}
	img, err := s.b.Images.Import(r.Body, image.ImportOptions{Ref: ref, Message: q.Get("message"),
		Change: func(c *dockerspec.DockerOCIImageConfig) error { return applyChanges(c, q["changes"]) }})
	if err != nil {
		writeError(w, err)
		return
	}
	s.imageEvent(events.ActionImport, img.ID.String(), img.ID.String())
	writeJSON(w, http.StatusOK, map[string]string{"status": img.ID.String()})
}

func (s *Server) loadImages(w http.ResponseWriter, r *http.Request) {
	names, err := s.b.Images.Load(r.Body, nil)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, n := range names {
		what := "Loaded image: " + image.Familiar(n)
		if strings.HasPrefix(n, "sha256:") {
			what = "Loaded image ID: " + n
		}
		enc.Encode(map[string]string{"stream": what + "\n"})
	}
}

func (s *Server) saveImages(w http.ResponseWriter, r *http.Request) {
	s.save(w, r.URL.Query()["names"])
}

func (s *Server) save(w http.ResponseWriter, names []string) {
	if len(names) == 0 {
		writeError(w, fmt.Errorf("no image names given: %w", errdefs.ErrInvalid))
		return
	}
	// Resolve every name before the 200 goes out, so a missing image is a 404.
	for _, n := range names {
		if _, err := s.b.Images.Get(n); err != nil {
			writeError(w, err)
			return
		}
	}
	w.Header().Set("Content-Type", "application/x-tar")
	if err := s.b.Images.Save(w, slices.Clone(names)); err != nil {
		// Headers are gone: all that is left is to cut the stream short.
		panic(http.ErrAbortHandler)
	}
}
