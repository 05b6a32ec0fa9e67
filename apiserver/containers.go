package apiserver

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/berth-project/berth/engine"
	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/logfile"
	"github.com/berth-project/berth/monitor"
	"github.com/berth-project/berth/network"
	ctypes "github.com/moby/moby/api/types/container"
)

func (s *Server) containerRoutes() {
	s.mux.HandleFunc("POST /containers/create", s.createContainer)
	s.mux.HandleFunc("GET /containers/json", s.listContainers)
	s.mux.HandleFunc("POST /containers/prune", s.pruneContainers)
	s.mux.HandleFunc("GET /containers/{id}/json", s.inspectContainer)
	s.mux.HandleFunc("POST /containers/{id}/start", s.startContainer)
	s.mux.HandleFunc("POST /containers/{id}/stop", s.stopContainer)
	s.mux.HandleFunc("POST /containers/{id}/restart", s.restartContainer)
	s.mux.HandleFunc("POST /containers/{id}/kill", s.killContainer)
	s.mux.HandleFunc("POST /containers/{id}/rename", s.renameContainer)
	s.mux.HandleFunc("POST /containers/{id}/update", s.updateContainer)
	s.mux.HandleFunc("POST /containers/{id}/bandwidth", s.setBandwidth)
	s.mux.HandleFunc("POST /containers/{id}/resize", s.resizeContainer)
	s.mux.HandleFunc("POST /containers/{id}/wait", s.waitContainer)
	s.mux.HandleFunc("POST /containers/{id}/attach", s.attachContainer)
	s.mux.HandleFunc("GET /containers/{id}/logs", s.containerLogs)
	s.mux.HandleFunc("DELETE /containers/{id}", s.removeContainer)
	s.mux.HandleFunc("POST /containers/{id}/pause", s.pauseContainer)
	s.mux.HandleFunc("POST /containers/{id}/unpause", s.unpauseContainer)
	s.mux.HandleFunc("GET /containers/{id}/top", s.topContainer)
	s.mux.HandleFunc("GET /containers/{id}/stats", s.containerStats)
	s.mux.HandleFunc("GET /containers/{id}/export", s.exportContainer)
	s.mux.HandleFunc("POST /containers/{id}/exec", s.createExec)
	s.mux.HandleFunc("POST /exec/{id}/start", s.startExec)
	s.mux.HandleFunc("POST /exec/{id}/resize", s.resizeExec)
	s.mux.HandleFunc("GET /exec/{id}/json", s.inspectExec)
}

// decodeBody reads a JSON body; malformed JSON or a field of the wrong
// type is a 400 naming the problem.
func decodeBody(r *http.Request, v any) error {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errdefs.New(errdefs.ErrInvalid, "invalid JSON: request body is empty")
		}
		return errdefs.New(errdefs.ErrInvalid, "invalid JSON: "+err.Error())
	}
	return nil
}

func (s *Server) createContainer(w http.ResponseWriter, r *http.Request) {
	var req ctypes.CreateRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Config == nil {
		writeError(w, errdefs.New(errdefs.ErrInvalid, "config cannot be empty in order to create a container"))
		return
	}
	res, err := s.b.Engine.Create(r.URL.Query().Get("name"), req.Config, req.HostConfig, req.NetworkingConfig)
	if err != nil {
		writeError(w, err)
		return
	}
	warnings := res.Warnings
	if warnings == nil {
		warnings = []string{}
	}
	writeJSON(w, http.StatusCreated, ctypes.CreateResponse{ID: res.ID, Warnings: warnings})
}

func (s *Server) listContainers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f, err := parseFilters(q.Get("filters"), "status", "name", "label", "id", "ancestor", "exited", "health", "namespace")
	if err != nil {
		writeError(w, err)
		return
	}
	limit, _ := strconv.Atoi(q.Get("limit"))
	list, err := s.b.Engine.List(engine.ListOptions{All: boolParam(r, "all"), Limit: limit, Size: boolParam(r, "size"), Filters: f})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) pruneContainers(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilters(r.URL.Query().Get("filters"), "label", "until")
	if err != nil {
		writeError(w, err)
		return
	}
	var until time.Time
	if v := f["until"]; len(v) > 0 {
		if until, err = untilTime(v[0]); err != nil {
			writeError(w, err)
			return
		}
	}
	list, err := s.b.Engine.List(engine.ListOptions{All: true, Filters: map[string][]string{"status": {"exited", "created", "dead"}, "label": f["label"]}})
	if err != nil {
		writeError(w, err)
		return
	}
	resp := ctypes.PruneReport{ContainersDeleted: []string{}}
	for _, c := range list {
		if !until.IsZero() && !time.Unix(c.Created, 0).Before(until) {
			continue
		}
		if err := s.b.Engine.Remove(c.ID, engine.RemoveOptions{}); err == nil {
			resp.ContainersDeleted = append(resp.ContainersDeleted, c.ID)
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) inspectContainer(w http.ResponseWriter, r *http.Request) {
	resp, err := s.b.Engine.Inspect(r.PathValue("id"), boolParam(r, "size"))
	if err != nil {
		writeError(w, err)
		return
	}
	// Berth's extension: the traffic counters of each interface, as in
	// stats (docker's inspect has no field for them).
	writeJSON(w, http.StatusOK, struct {
		*ctypes.InspectResponse
		NetworkSettings      *legacyNetworkSettings
		BerthNetworkCounters map[string]ctypes.NetworkStats `json:",omitempty"`
	}{resp, withLegacyFields(resp.NetworkSettings), s.b.Engine.NetworkCounters(resp.ID)})
}

// legacyNetworkSettings adds the fields API 1.50 still has beside
// Networks, which dockerd fills from the default bridge network's
// endpoint and scripts still read (.NetworkSettings.IPAddress).
type legacyNetworkSettings struct {
	*ctypes.NetworkSettings
	Bridge                 string
	HairpinMode            bool
	LinkLocalIPv6Address   string
	LinkLocalIPv6PrefixLen int
	SecondaryIPAddresses   []string
	SecondaryIPv6Addresses []string
	EndpointID             string
	Gateway                string
	GlobalIPv6Address      string
	GlobalIPv6PrefixLen    int
	IPAddress              string
	IPPrefixLen            int
	IPv6Gateway            string
	MacAddress             string
}

func withLegacyFields(ns *ctypes.NetworkSettings) *legacyNetworkSettings {
	if ns == nil {
		return nil
	}
	l := &legacyNetworkSettings{NetworkSettings: ns}
	ep := ns.Networks[network.DefaultName]
	if ep == nil || ep.EndpointID == "" {
		return l
	}
	str := func(a netip.Addr) string {
		if !a.IsValid() {
			return ""
		}
		return a.String()
	}
	l.EndpointID, l.IPAddress, l.IPPrefixLen, l.Gateway = ep.EndpointID, str(ep.IPAddress), ep.IPPrefixLen, str(ep.Gateway)
	l.GlobalIPv6Address, l.GlobalIPv6PrefixLen, l.IPv6Gateway = str(ep.GlobalIPv6Address), ep.GlobalIPv6PrefixLen, str(ep.IPv6Gateway)
	l.MacAddress = ep.MacAddress.String()
	return l
}

func (s *Server) startContainer(w http.ResponseWriter, r *http.Request) {
	if err := s.b.Engine.Start(r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// stopParams reads ?t= (seconds) and ?signal=.
func stopParams(r *http.Request) (string, *int, error) {
	q := r.URL.Query()
	var timeout *int
	if t := q.Get("t"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return "", nil, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid value for t: %q", t))
		}
		timeout = &n
	}
	return q.Get("signal"), timeout, nil
}

func (s *Server) stopContainer(w http.ResponseWriter, r *http.Request) {
	sig, timeout, err := stopParams(r)
	if err == nil {
		err = s.b.Engine.Stop(r.PathValue("id"), sig, timeout)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) restartContainer(w http.ResponseWriter, r *http.Request) {
	sig, timeout, err := stopParams(r)
	if err == nil {
		err = s.b.Engine.Restart(r.PathValue("id"), sig, timeout)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) killContainer(w http.ResponseWriter, r *http.Request) {
	if err := s.b.Engine.Kill(r.PathValue("id"), r.URL.Query().Get("signal")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) renameContainer(w http.ResponseWriter, r *http.Request) {
	if err := s.b.Engine.Rename(r.PathValue("id"), r.URL.Query().Get("name")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// size reads ?h= and ?w=.
func size(r *http.Request) (uint16, uint16, error) {
	h, err1 := strconv.ParseUint(r.URL.Query().Get("h"), 10, 16)
	wd, err2 := strconv.ParseUint(r.URL.Query().Get("w"), 10, 16)
	if err1 != nil || err2 != nil {
		return 0, 0, errdefs.New(errdefs.ErrInvalid, "resize: h and w must be numbers")
	}
	return uint16(h), uint16(wd), nil
}

func (s *Server) resizeContainer(w http.ResponseWriter, r *http.Request) {
	h, wd, err := size(r)
	if err == nil {
		err = s.b.Engine.Resize(r.PathValue("id"), h, wd)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) removeContainer(w http.ResponseWriter, r *http.Request) {
	if boolParam(r, "link") {
		writeError(w, errdefs.New(errdefs.ErrInvalid, "links are not supported"))
		return
	}
	if err := s.b.Engine.Remove(r.PathValue("id"), engine.RemoveOptions{Force: boolParam(r, "force"), Volumes: boolParam(r, "v")}); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// waitContainer answers 200 at once (the client then knows the wait is in
// place, and may start the container) and the exit status when the
// condition holds.
func (s *Server) waitContainer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	cond := r.URL.Query().Get("condition")
	switch cond {
	case "", "not-running", "next-exit", "removed":
	default:
		writeError(w, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid condition: %q", cond)))
		return
	}
	if _, err := s.b.Engine.Inspect(id, false); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	code, err := s.b.Engine.Wait(r.Context(), id, cond)
	resp := ctypes.WaitResponse{StatusCode: int64(code)}
	if err != nil {
		if r.Context().Err() != nil {
			return
		}
		resp.Error = &ctypes.WaitExitError{Message: err.Error()}
	}
	json.NewEncoder(w).Encode(resp)
}

// hijack takes over the connection for a raw stream, answering 101 when
// the client asked to upgrade (as the docker CLI does) and 200 otherwise.
// The returned reader holds whatever the client sent after its request.
func hijack(w http.ResponseWriter, r *http.Request, contentType string) (net.Conn, io.Reader, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	conn.SetDeadline(time.Time{})
	if r.Header.Get("Upgrade") != "" {
		fmt.Fprintf(brw, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", contentType)
	} else {
		fmt.Fprintf(brw, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", contentType)
	}
	if err := brw.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, brw.Reader, nil
}

func streamType(tty bool) string {
	if tty {
		return "application/vnd.docker.raw-stream"
	}
	return "application/vnd.docker.multiplexed-stream"
}

// splice joins a client's hijacked connection to a monitor stream until
// the monitor's side ends (the process's output is over). The client's
// end of input becomes the monitor's (stdin closed when it was opened
// for one client).
func splice(client net.Conn, clientIn io.Reader, mon net.Conn, beforeClose func()) {
	done := make(chan struct{})
	go func() {
		io.Copy(client, mon)
		close(done)
	}()
	go func() {
		io.Copy(mon, clientIn)
		if uc, ok := mon.(*net.UnixConn); ok {
			uc.CloseWrite()
		}
	}()
	<-done
	if beforeClose != nil {
		beforeClose()
	}
	if tc, ok := client.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	}
	client.Close()
	mon.Close()
}

func (s *Server) attachContainer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	info, err := s.b.Engine.Inspect(id, false)
	if err != nil {
		writeError(w, err)
		return
	}
	if !boolParam(r, "stream") {
		writeError(w, errdefs.New(errdefs.ErrInvalid, "attach without stream=1 (logs only) is not supported; use the logs endpoint"))
		return
	}
	cfg := monitor.AttachConfig{Stdin: boolParam(r, "stdin"), Stdout: boolParam(r, "stdout"), Stderr: boolParam(r, "stderr")}
	client, in, err := hijack(w, r, streamType(info.Config.Tty))
	if err != nil {
		return
	}
	// The request's context ends with the hijack.
	ctx, input, cancel := watchClient(in)
	defer cancel()
	mon, _, err := s.b.Engine.Attach(ctx, id, cfg)
	if err != nil {
		client.Close()
		return
	}
	splice(client, input, mon, nil)
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !boolParam(r, "stdout") && !boolParam(r, "stderr") {
		writeError(w, errdefs.New(errdefs.ErrInvalid, "Bad parameters: you must choose at least one stream"))
		return
	}
	o := engine.LogsOptions{Tail: -1, Follow: boolParam(r, "follow")}
	var err error
	if o.Since, err = unixTime(q.Get("since")); err != nil {
		writeError(w, err)
		return
	}
	if o.Until, err = unixTime(q.Get("until")); err != nil {
		writeError(w, err)
		return
	}
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil {
			writeError(w, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid value for tail: %q", t)))
			return
		}
		o.Tail = n
	}
	info, err := s.b.Engine.Inspect(r.PathValue("id"), false)
	if err != nil {
		writeError(w, err)
		return
	}
	if info.HostConfig.LogConfig.Type == engine.LogDriverNone {
		writeError(w, errdefs.New(errdefs.ErrInvalid, "configured logging driver does not support reading"))
		return
	}
	tty := info.Config.Tty
	w.Header().Set("Content-Type", streamType(tty))
	w.WriteHeader(http.StatusOK)
	fw := flushWriter{w}
	stamps := boolParam(r, "timestamps")
	wantOut, wantErr := boolParam(r, "stdout"), boolParam(r, "stderr")
	_, err = s.b.Engine.Logs(r.Context(), info.ID, o, func(e logfile.Entry) error {
		stream := byte(1)
		if e.Stream == "stderr" {
			stream = 2
		}
		if stream == 1 && !wantOut || stream == 2 && !wantErr {
			return nil
		}
		line := e.Log
		if stamps {
			line = e.Time.Format(time.RFC3339Nano) + " " + line
		}
		return writeFrame(fw, stream, []byte(line), tty)
	})
	if err != nil && r.Context().Err() == nil {
		// Headers are out: the error can only end the stream.
		return
	}
}

// writeFrame writes p to a docker stream: as is when raw (a terminal),
// else as one frame of the multiplexed stream (1 stdout, 2 stderr).
func writeFrame(w io.Writer, stream byte, p []byte, raw bool) error {
	if raw {
		_, err := w.Write(p)
		return err
	}
	buf := make([]byte, 8, 8+len(p))
	buf[0] = stream
	binary.BigEndian.PutUint32(buf[4:], uint32(len(p)))
	_, err := w.Write(append(buf, p...))
	return err
}

// untilTime reads a prune filter's until: a timestamp, or a duration
// back from now ("24h").
func untilTime(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return unixTime(v)
}

// unixTime reads docker's since/until: seconds with an optional fraction.
func unixTime(v string) (time.Time, error) {
	if v == "" || v == "0" {
		return time.Time{}, nil
	}
	sec, frac, _ := strings.Cut(v, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid timestamp %q", v))
	}
	var ns int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid timestamp %q", v))
		}
	}
	return time.Unix(s, ns), nil
}

func (s *Server) createExec(w http.ResponseWriter, r *http.Request) {
	var req ctypes.ExecCreateRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	id, err := s.b.Engine.ExecCreate(r.PathValue("id"), req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, ctypes.ExecCreateResponse{ID: id})
}

func (s *Server) startExec(w http.ResponseWriter, r *http.Request) {
	var req ctypes.ExecStartRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	id := r.PathValue("id")
	x, err := s.b.Engine.ExecInspect(id)
	if err != nil {
		writeError(w, err)
		return
	}
	if req.Detach {
		if _, _, err := s.b.Engine.ExecStart(id, true, req.ConsoleSize); err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	// As dockerd, the stream opens (its headers flushed) before the process
	// starts: output that came first would reach the client in the same
	// read as the headers, where an HTTP client's buffer swallows it (the
	// Python SDK's exec_run lost its output so under load).
	client, in, err := hijack(w, r, streamType(x.ProcessConfig.Tty))
	if err != nil {
		return
	}
	mon, tty, err := s.b.Engine.ExecStart(id, false, req.ConsoleSize)
	if err != nil {
		// The stream carries the error; for a process that could not
		// start, the client reads exit code 126 from the exec's inspect.
		writeFrame(client, 1, []byte(err.Error()+"\r\n"), tty)
		client.Close()
		return
	}
	if mon == nil { // nothing attached
		client.Close()
		return
	}
	// The client asks for the exit code when the stream ends: have it.
	splice(client, in, mon, func() { s.b.Engine.ExecWait(id, 5*time.Second) })
}

func (s *Server) resizeExec(w http.ResponseWriter, r *http.Request) {
	h, wd, err := size(r)
	if err == nil {
		err = s.b.Engine.ExecResize(r.PathValue("id"), h, wd)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) inspectExec(w http.ResponseWriter, r *http.Request) {
	resp, err := s.b.Engine.ExecInspect(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// watchClient reads a hijacked client's input into a pipe (the stream's
// stdin) and returns a context that ends if the connection fails. A clean
// end of input (the docker CLI half-closes even without -i) is not a
// departure: the stream goes on.
func watchClient(in io.Reader) (context.Context, io.Reader, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, in)
		pw.CloseWithError(err)
		if err != nil {
			cancel()
		}
	}()
	return ctx, pr, cancel
}

func (s *Server) pauseContainer(w http.ResponseWriter, r *http.Request) {
	if err := s.b.Engine.Pause(r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) unpauseContainer(w http.ResponseWriter, r *http.Request) {
	if err := s.b.Engine.Unpause(r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) topContainer(w http.ResponseWriter, r *http.Request) {
	resp, err := s.b.Engine.Top(r.PathValue("id"), r.URL.Query().Get("ps_args"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// containerStats answers one sample (stream=0, or one-shot=1 without the
// previous CPU sample) or a stream of one per second.
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	stream := r.URL.Query().Get("stream") == "" || boolParam(r, "stream")
	if !stream {
		first, err := s.b.Engine.Stats(id, nil)
		if err != nil {
			writeError(w, err)
			return
		}
		if !boolParam(r, "one-shot") {
			// docker's non-stream answer carries a previous sample a
			// second earlier, for a CPU percentage.
			time.Sleep(time.Second)
			if next, err := s.b.Engine.Stats(id, first); err == nil {
				first = next
			}
		}
		writeJSON(w, http.StatusOK, first)
		return
	}
	if _, err := s.b.Engine.Stats(id, nil); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(flushWriter{w})
	s.b.Engine.StatsStream(r.Context(), id, func(st *ctypes.StatsResponse) error { return enc.Encode(st) })
}

func (s *Server) exportContainer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.b.Engine.Inspect(id, false); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	// Once the tar has begun, an error can only cut it short.
	s.b.Engine.Export(id, w)
}

// setBandwidth is a Berth extension of the Engine API (docker has no
// bandwidth field): body {"Bandwidth": "10mbit"} or
// {"Bandwidth": "egress=10mbit,ingress=2mbit"}; "" removes the limit.
// It changes a running container's limit at once.
func (s *Server) setBandwidth(w http.ResponseWriter, r *http.Request) {
	var req struct{ Bandwidth string }
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := s.b.Engine.SetBandwidth(r.PathValue("id"), req.Bandwidth); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// Archive endpoints (docker cp): HEAD stats a path, GET reads it as a
// tar, PUT extracts a tar into a directory; the stat travels base64-coded
// in X-Docker-Container-Path-Stat.
func (s *Server) archiveRoutes() {
	s.mux.HandleFunc("HEAD /containers/{id}/archive", s.statArchive)
	s.mux.HandleFunc("GET /containers/{id}/archive", s.getArchive)
	s.mux.HandleFunc("PUT /containers/{id}/archive", s.putArchive)
}

func setPathStat(w http.ResponseWriter, st engine.PathStat) {
	raw, _ := json.Marshal(st)
	w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(raw))
}

func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", errdefs.New(errdefs.ErrInvalid, "path is required")
	}
	return p, nil
}

func (s *Server) statArchive(w http.ResponseWriter, r *http.Request) {
	p, err := archivePath(r)
	var st engine.PathStat
	if err == nil {
		st, err = s.b.Engine.StatPath(r.PathValue("id"), p)
	}
	if err != nil {
		w.WriteHeader(statusOf(err)) // HEAD: no body
		return
	}
	setPathStat(w, st)
	w.WriteHeader(http.StatusOK)
}

func (s *Server) getArchive(w http.ResponseWriter, r *http.Request) {
	p, err := archivePath(r)
	if err != nil {
		writeError(w, err)
		return
	}
	started := false
	err = s.b.Engine.ArchivePath(r.PathValue("id"), p, func(st engine.PathStat) {
		setPathStat(w, st)
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		started = true
	}, w)
	if err != nil && !started {
		writeError(w, err)
	}
}

func (s *Server) putArchive(w http.ResponseWriter, r *http.Request) {
	p, err := archivePath(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if boolParam(r, "copyUIDGID") {
		writeError(w, errdefs.New(errdefs.ErrInvalid, "docker cp --archive (copyUIDGID) is not supported by berthd: files keep the owners the archive gives them"))
		return
	}
	if err := s.b.Engine.ExtractToDir(r.PathValue("id"), p, r.Body); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) updateContainer(w http.ResponseWriter, r *http.Request) {
	var u ctypes.UpdateConfig
	if err := decodeBody(r, &u); err != nil {
		writeError(w, err)
		return
	}
	warnings, err := s.b.Engine.Update(r.PathValue("id"), u)
	if err != nil {
		writeError(w, err)
		return
	}
	if warnings == nil {
		warnings = []string{}
	}
	writeJSON(w, http.StatusOK, ctypes.UpdateResponse{Warnings: warnings})
}
