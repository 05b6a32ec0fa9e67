package apiserver

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/berth-project/berth/engine"
	"github.com/berth-project/berth/errdefs"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"
)

func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Docker-Experimental", "false")
	h.Set("Builder-Version", "1")
	h.Set("Swarm", "inactive")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Write([]byte("OK"))
}

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "Berth"},
		Version:       s.b.Version,
		APIVersion:    APIVersion,
		MinAPIVersion: MinAPIVersion,
		Os:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		GoVersion:     runtime.Version(),
		KernelVersion: kernelVersion(),
		Components: []system.ComponentVersion{{Name: "Engine", Version: s.b.Version,
			Details: map[string]string{"ApiVersion": APIVersion, "MinAPIVersion": MinAPIVersion, "Os": runtime.GOOS, "Arch": runtime.GOARCH,
				"GoVersion": runtime.Version(), "KernelVersion": kernelVersion(), "Experimental": "false"}}},
	})
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return "Linux"
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	imgs, err := s.b.Images.List()
	if err != nil {
		writeError(w, err)
		return
	}
	var running, paused, stopped int
	if s.b.Engine != nil {
		list, err := s.b.Engine.List(engine.ListOptions{All: true})
		if err != nil {
			writeError(w, err)
			return
		}
		for _, c := range list {
			switch c.State {
			case "running":
				running++
			case "paused":
				paused++
			default:
				stopped++
			}
		}
	}
	var si unix.Sysinfo_t
	unix.Sysinfo(&si)
	host, _ := os.Hostname()
	cgv := "1"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		cgv = "2"
	}
	secOpts := []string{"name=seccomp,profile=builtin"}
	usernsOpt, usernsStatus := s.b.Engine.UsernsInfo()
	if usernsOpt != "" {
		secOpts = append(secOpts, usernsOpt)
	}
	writeJSON(w, http.StatusOK, system.Info{
		ID:                 "berthd",
		Images:             len(imgs),
		Containers:         running + paused + stopped,
		ContainersRunning:  running,
		ContainersPaused:   paused,
		ContainersStopped:  stopped,
		Driver:             s.b.Images.StorageDriver(),
		RegistryConfig:     s.registryConfig(),
		DriverStatus:       [][2]string{{"Backing Filesystem", "berth storage (layers by diffID)"}, {"Quota backend", s.b.Images.QuotaBackend()}, {"Volume quota backend", s.b.Volumes.QuotaBackend()}, usernsStatus},
		MemoryLimit:        true,
		CPUCfsPeriod:       true,
		CPUCfsQuota:        true,
		CPUShares:          true,
		CPUSet:             true,
		PidsLimit:          true,
		SystemTime:         time.Now().Format(time.RFC3339Nano),
		LoggingDriver:      "json-file",
		CgroupDriver:       "cgroupfs",
		CgroupVersion:      cgv,
		KernelVersion:      kernelVersion(),
		OperatingSystem:    osName(),
		OSType:             "linux",
		Architecture:       runtime.GOARCH,
		NCPU:               runtime.NumCPU(),
		MemTotal:           int64(si.Totalram) * int64(si.Unit),
		DockerRootDir:      s.b.DataRoot,
		Name:               host,
		ServerVersion:      s.b.Version,
		DefaultRuntime:     "berth-runtime",
		LiveRestoreEnabled: true, // containers outlive berthd (berth-monitor holds them)
		SecurityOptions:    secOpts,
		Swarm:              swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive},
		Warnings:           s.b.Warnings,
	})
}

// events streams engine events, as JSON lines, filtered by type,
// container (id or name), event, image and label.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := parseFilters(q.Get("filters"), "type", "container", "event", "image", "label", "volume", "network")
	if err != nil {
		writeError(w, err)
		return
	}
	since, err := unixTime(q.Get("since"))
	if err != nil {
		writeError(w, err)
		return
	}
	until, err := unixTime(q.Get("until"))
	if err != nil {
		writeError(w, err)
		return
	}
	if !since.IsZero() && !until.IsZero() && since.After(until) {
		writeError(w, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("`since` time (%s) cannot be after `until` time (%s)", q.Get("since"), q.Get("until"))))
		return
	}
	keep := func(m events.Message) bool {
		match := func(key string, ok func(string) bool) bool {
			return len(f[key]) == 0 || slices.ContainsFunc(f[key], ok)
		}
		return match("type", func(v string) bool { return string(m.Type) == v }) &&
			match("container", func(v string) bool {
				// dockerd's fuzzy match: a prefix of the actor's ID or name,
				// whatever the event's type.
				return strings.HasPrefix(m.Actor.ID, v) || strings.HasPrefix(m.Actor.Attributes["name"], strings.TrimPrefix(v, "/"))
			}) &&
			match("event", func(v string) bool { a, _, _ := strings.Cut(string(m.Action), ":"); return a == v }) &&
			match("image", func(v string) bool {
				return m.Actor.Attributes["image"] == v || m.Type == events.ImageEventType && (m.Actor.ID == v || m.Actor.Attributes["name"] == v)
			}) &&
			match("volume", func(v string) bool { return m.Type == events.VolumeEventType && m.Actor.ID == v }) &&
			match("network", func(v string) bool {
				return m.Type == events.NetworkEventType && (strings.HasPrefix(m.Actor.ID, v) || m.Actor.Attributes["name"] == v)
			}) &&
			match("label", func(v string) bool {
				k, val, has := strings.Cut(v, "=")
				got, ok := m.Actor.Attributes[k]
				return ok && (!has || got == val)
			})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	enc := json.NewEncoder(flushWriter{w})
	s.b.Engine.Events(r.Context(), since, until, keep, func(m events.Message) error { return enc.Encode(m) })
}

// registryConfig is docker info's registry section: loopback and the
// insecure registries spoken to over plain HTTP, and the mirrors (Docker
// Hub's first, as dockerd lists them; other registries' after).
func (s *Server) registryConfig() *registry.ServiceConfig {
	c := &registry.ServiceConfig{InsecureRegistryCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, IndexConfigs: map[string]*registry.IndexInfo{
		"docker.io": {Name: "docker.io", Official: true, Secure: true, Mirrors: []string{}},
	}}
	for _, h := range s.b.InsecureRegistries {
		c.IndexConfigs[h] = &registry.IndexInfo{Name: h, Secure: false, Mirrors: []string{}}
	}
	hosts := slices.Sorted(maps.Keys(s.b.RegistryMirrors))
	for _, h := range hosts {
		m := s.b.RegistryMirrors[h].String()
		if h == "index.docker.io" {
			c.Mirrors = append([]string{m}, c.Mirrors...)
			c.IndexConfigs["docker.io"].Mirrors = []string{m}
			continue
		}
		c.Mirrors = append(c.Mirrors, h+"="+m)
	}
	return c
}
