package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ctypes "github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/build"
	"github.com/berth-project/berth/engine"
	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/storage"
)

func (s *Server) buildRoutes() {
	s.mux.HandleFunc("POST /build", s.build)
	s.mux.HandleFunc("POST /build/prune", s.buildPrune)
	s.mux.HandleFunc("POST /commit", s.commit)
	s.mux.HandleFunc("GET /containers/{id}/changes", s.containerChanges)
}

// containerChanges serves docker diff.
func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request) {
	ch, err := s.b.Engine.Changes(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	out := []map[string]any{}
	for _, c := range ch {
		out = append(out, map[string]any{"Path": c.Path, "Kind": c.Kind})
	}
	writeJSON(w, http.StatusOK, out)
}

// buildDir holds build contexts and the mounts of COPY steps; berthd
// empties it when it starts.
func (s *Server) buildDir() string { return filepath.Join(s.b.DataRoot, "build") }

// cleanBuildDir removes what a build cut short by a crash left.
func (s *Server) cleanBuildDir() {
	if ents, err := os.ReadDir(s.buildDir()); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "context-") {
				storage.Unmount(filepath.Join(s.buildDir(), e.Name()))
			}
		}
	}
	ents, _ := os.ReadDir(filepath.Join(s.buildDir(), "mnt"))
	for _, e := range ents {
		storage.Unmount(filepath.Join(s.buildDir(), "mnt", e.Name()))
	}
	os.RemoveAll(s.buildDir())
	keys, _ := s.b.Images.RootfsKeys()
	for _, k := range keys {
		if strings.HasPrefix(k, build.RootfsPrefix) {
			s.b.Images.RemoveRootfs(k)
		}
	}
}

// streamWriter turns the builder's text into the {"stream": …} messages
// of docker's build output, one per write.
type streamWriter struct {
	w     io.Writer
	quiet bool
}

func (sw streamWriter) Write(p []byte) (int, error) {
	if sw.quiet {
		return len(p), nil
	}
	b, _ := json.Marshal(map[string]string{"stream": string(p)})
	if _, err := sw.w.Write(append(b, '\n')); err != nil {
		return 0, err
	}
	return len(p), nil
}

func jsonParam[T any](r *http.Request, name string, v *T) error {
	if raw := r.URL.Query().Get(name); raw != "" {
		if err := json.Unmarshal([]byte(raw), v); err != nil {
			return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid %s: %v", name, err))
		}
	}
	return nil
}

// build serves POST /build, docker's classic builder endpoint: the context
// as a tar in the body, progress as a JSON stream.
func (s *Server) build(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("version") == "2" {
		writeError(w, errdefs.New(errdefs.ErrInvalid, "BuildKit is not supported by berthd: build with the classic builder (DOCKER_BUILDKIT=0)"))
		return
	}
	if q.Get("remote") != "" {
		writeError(w, errdefs.New(errdefs.ErrInvalid, "a remote build context is not fetched by berthd: send the context"))
		return
	}
	o := build.Options{Dockerfile: q.Get("dockerfile"), Tags: q["t"], Target: q.Get("target"),
		NoCache: boolParam(r, "nocache"), Pull: boolParam(r, "pull"), NetworkMode: q.Get("networkmode")}
	if o.NetworkMode == "default" {
		o.NetworkMode = ""
	}
	if err := jsonParam(r, "buildargs", &o.BuildArgs); err != nil {
		writeError(w, err)
		return
	}
	if err := jsonParam(r, "labels", &o.Labels); err != nil {
		writeError(w, err)
		return
	}
	for _, t := range o.Tags {
		if err := s.b.Images.CheckName(t); err != nil {
			writeError(w, err)
			return
		}
	}
	dir, release, err := s.unpackContext(r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	defer release()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fw := flushWriter{w}
	b := &build.Builder{Images: s.b.Images, Engine: s.b.Engine, TmpDir: filepath.Join(s.buildDir(), "mnt")}
	id, err := b.Build(r.Context(), dir, o, streamWriter{w: fw, quiet: boolParam(r, "q")})
	if err != nil {
		code := 1
		var be *build.Error
		if errors.As(err, &be) {
			code = be.Code
		}
		json.NewEncoder(fw).Encode(map[string]any{"errorDetail": map[string]any{"code": code, "message": err.Error()}, "error": err.Error()})
		return
	}
	json.NewEncoder(fw).Encode(map[string]any{"aux": map[string]string{"ID": id.String()}})
	if boolParam(r, "q") {
		// The classic builder's quiet mode: the ID alone, as a stream line.
		json.NewEncoder(fw).Encode(map[string]string{"stream": id.String() + "\n"})
	}
}

// smallContext is the largest plain-tar context unpacked into a tmpfs of
// its own: creating a few hundred files costs ~0.3 ms each on ext4 and
// ~0.01 ms on tmpfs, most of a cached rebuild's time. Larger (or
// compressed) contexts go to the data root's disk.
const smallContext = 32 << 20

// unpackContext unpacks a build context under the build directory and
// returns it with what removes it (and its tmpfs, if it has one).
func (s *Server) unpackContext(body io.Reader) (string, func(), error) {
	if err := os.MkdirAll(s.buildDir(), 0o700); err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp(s.buildDir(), "context-")
	if err != nil {
		return "", nil, err
	}
	release := func() { os.RemoveAll(dir) }
	head, err := io.ReadAll(io.LimitReader(body, smallContext+1))
	if err != nil {
		release()
		return "", nil, errdefs.New(errdefs.ErrInvalid, "build context: "+err.Error())
	}
	plain := len(head) >= 512 && bytes.Equal(head[257:262], []byte("ustar"))
	if len(head) <= smallContext && plain {
		// Each file takes at least a page on tmpfs and 1 KiB in the tar.
		size := 4*len(head) + 1<<20
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, fmt.Sprintf("size=%d,mode=0700", size)); err == nil {
			release = func() {
				storage.Unmount(dir)
				os.RemoveAll(dir)
			}
			if err := build.UnpackContext(bytes.NewReader(head), dir); err == nil {
				return dir, release, nil
			}
			// Say, more small files than the estimate: unpack again on disk.
			storage.Unmount(dir)
			release = func() { os.RemoveAll(dir) }
		}
	}
	if err := build.UnpackContext(io.MultiReader(bytes.NewReader(head), body), dir); err != nil {
		release()
		return "", nil, err
	}
	return dir, release, nil
}

// buildPrune serves docker builder prune: the build cache is the untagged
// images of earlier builds that nothing builds on.
func (s *Server) buildPrune(w http.ResponseWriter, r *http.Request) {
	res, err := s.b.Images.Prune(false)
	if err != nil {
		writeError(w, err)
		return
	}
	deleted := []string{}
	for _, d := range res.Deleted {
		deleted = append(deleted, d.String())
	}
	writeJSON(w, http.StatusOK, map[string]any{"CachesDeleted": deleted, "SpaceReclaimed": res.Reclaimed})
}

// commit serves docker commit: the container's writable layer becomes a
// new image on the container's image, with its config changed by the
// request's config and --change instructions.
func (s *Server) commit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var cfg *ctypes.Config
	if r.ContentLength != 0 {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeError(w, err)
			return
		}
		if len(bytes.TrimSpace(body)) > 0 && string(bytes.TrimSpace(body)) != "null" {
			cfg = &ctypes.Config{}
			if err := json.Unmarshal(body, cfg); err != nil {
				writeError(w, errdefs.New(errdefs.ErrInvalid, "invalid config: "+err.Error()))
				return
			}
		}
	}
	ref := q.Get("repo")
	if ref != "" && q.Get("tag") != "" {
		ref += ":" + q.Get("tag")
	}
	if ref != "" {
		if err := s.b.Images.CheckName(ref); err != nil {
			writeError(w, err)
			return
		}
	}
	pause := q.Get("pause") == "" || boolParam(r, "pause")
	id, err := s.b.Engine.Commit(q.Get("container"), engine.CommitOptions{
		Pause: pause, Author: q.Get("author"), Comment: q.Get("comment"), Ref: ref,
		Change: func(c *dockerspec.DockerOCIImageConfig) error {
			if cfg != nil {
				overlayConfig(c, cfg)
			}
			return applyChanges(c, q["changes"])
		}})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"Id": id.String()})
}

// overlayConfig puts the fields a commit request's config sets over the
// container's.
func overlayConfig(c *dockerspec.DockerOCIImageConfig, o *ctypes.Config) {
	if o.Cmd != nil {
		c.Cmd = o.Cmd
	}
	if o.Entrypoint != nil {
		c.Entrypoint = o.Entrypoint
	}
	if o.Env != nil {
		c.Env = o.Env
	}
	if o.WorkingDir != "" {
		c.WorkingDir = o.WorkingDir
	}
	if o.User != "" {
		c.User = o.User
	}
	for k, v := range o.Labels {
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		c.Labels[k] = v
	}
}

// commitChanges are the instructions docker commit --change accepts.
var commitChanges = map[string]bool{"cmd": true, "entrypoint": true, "env": true, "expose": true, "label": true,
	"onbuild": true, "user": true, "volume": true, "workdir": true, "stopsignal": true, "healthcheck": true, "shell": true}

// applyChanges applies docker commit/import --change instructions.
func applyChanges(c *dockerspec.DockerOCIImageConfig, changes []string) error {
	for _, ch := range changes {
		if strings.TrimSpace(ch) == "" {
			continue
		}
		res, err := parser.Parse(strings.NewReader(ch))
		if err != nil {
			return errdefs.New(errdefs.ErrInvalid, "invalid change: "+err.Error())
		}
		for _, n := range res.AST.Children {
			if !commitChanges[strings.ToLower(n.Value)] {
				return errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("%s is not a valid change command", strings.ToUpper(n.Value)))
			}
			cmd, err := instructions.ParseCommand(n)
			if err != nil {
				return errdefs.New(errdefs.ErrInvalid, "invalid change: "+err.Error())
			}
			if err := build.ApplyConfig(c, cmd); err != nil {
				return err
			}
		}
	}
	return nil
}
