// Package apiserver serves the Docker Engine API over HTTP, so that the
// docker CLI, Compose and the Docker SDKs work against berthd. It only
// translates: requests become calls on the engine's parts (today the image
// store), errors become status codes in one place (statusOf).
package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/berth-project/berth/engine"
	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/network"
	"github.com/berth-project/berth/volume"
)

// The API versions served: what the docker 28 CLI asks for, down to the
// oldest dockerd still accepts.
const (
	APIVersion    = "1.50"
	MinAPIVersion = "1.24"
)

// Backend is what the API drives.
type Backend struct {
	Images   *image.Store
	Engine   *engine.Engine
	Volumes  *volume.Store
	Networks *network.Manager
	DataRoot string
	// Version is berthd's own version, for /version and /info.
	Version string
	// Warnings are shown by docker info (an unauthenticated TCP socket).
	Warnings []string
	// InsecureRegistries and RegistryMirrors ("host" → mirror URL, the
	// Docker Hub's under index.docker.io) are berthd's registry options,
	// for docker info.
	InsecureRegistries []string
	RegistryMirrors    map[string]*url.URL
}

// Server is an http.Handler for the Engine API.
type Server struct {
	b   Backend
	mux *http.ServeMux
}

// New returns the API handler over b.
func New(b Backend) *Server {
	s := &Server{b: b, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /_ping", s.ping)
	s.mux.HandleFunc("HEAD /_ping", s.ping)
	s.mux.HandleFunc("GET /version", s.version)
	s.mux.HandleFunc("GET /info", s.info)
	s.mux.HandleFunc("GET /events", s.events)
	s.mux.HandleFunc("GET /system/df", s.systemDF)
	s.imageRoutes()
	s.containerRoutes()
	s.archiveRoutes()
	s.volumeRoutes()
	s.networkRoutes()
	s.buildRoutes()
	s.cleanBuildDir()
	// Routes Berth does not serve answer as dockerd's unknown routes do.
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, message("page not found"))
	})
	return s
}

type versionKey struct{}

var versioned = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

// ServeHTTP strips the /v1.xx prefix, refusing versions outside what is
// served with dockerd's messages, and routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// A request that panics answers 500 and is logged with its stack; the
	// daemon serves on (the engine releases its lock by defer).
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			slog.Error("request panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			writeJSON(w, http.StatusInternalServerError, message(fmt.Sprintf("internal error: %v", v)))
		}
	}()
	w.Header().Set("Api-Version", APIVersion)
	w.Header().Set("Server", "Docker/"+s.b.Version+" (linux) berthd")
	w.Header().Set("Ostype", "linux")
	version := APIVersion
	if m := versioned.FindStringSubmatch(r.URL.Path); m != nil {
		version = m[1]
		r.URL.Path = m[2]
		r.URL.RawPath = ""
		if versionLess(version, MinAPIVersion) {
			writeJSON(w, http.StatusBadRequest, message(fmt.Sprintf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", version, MinAPIVersion)))
			return
		}
		if versionLess(APIVersion, version) {
			writeJSON(w, http.StatusBadRequest, message(fmt.Sprintf("client version %s is too new. Maximum supported API version is %s", version, APIVersion)))
			return
		}
	}
	s.mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), versionKey{}, version)))
}

// versionLess compares "major.minor" API versions.
func versionLess(a, b string) bool {
	am, an := splitVersion(a)
	bm, bn := splitVersion(b)
	return am < bm || am == bm && an < bn
}

func splitVersion(v string) (int, int) {
	maj, min, _ := strings.Cut(v, ".")
	x, _ := strconv.Atoi(maj)
	y, _ := strconv.Atoi(min)
	return x, y
}

type errorMessage struct {
	Message string `json:"message"`
}

func message(m string) errorMessage { return errorMessage{Message: m} }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// writeError sends err as the CLI expects: its status class and
// {"message": …}, which the CLI prints after "Error response from daemon:".
func writeError(w http.ResponseWriter, err error) {
	if code := statusOf(err); code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	writeJSON(w, statusOf(err), message(clientMessage(err)))
}

// clientMessage is err's text without the ": not found"-style tail that
// wrapping an errdefs kind adds: the CLI shows dockerd's plain message.
func clientMessage(err error) string {
	msg := err.Error()
	for _, kind := range errdefs.Classes {
		if tail := ": " + kind.Error(); errors.Is(err, kind) && strings.HasSuffix(msg, tail) && len(msg) > len(tail) {
			return strings.TrimSuffix(msg, tail)
		}
	}
	return msg
}

func boolParam(r *http.Request, name string) bool {
	v := r.URL.Query().Get(name)
	return v == "1" || strings.EqualFold(v, "true")
}
