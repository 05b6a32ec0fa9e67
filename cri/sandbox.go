package cri

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/containernetworking/cni/libcni"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ctypes "github.com/moby/moby/api/types/container"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/engine"
	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/image"
	berthnet "github.com/berth-project/berth/network"
)

// Namespace is the engine namespace of what the CRI makes: kept out of
// the Docker API's lists, as containerd keeps its k8s.io namespace.
const Namespace = "k8s.io"

// The labels that carry a CRI object's own description on its engine
// record (JSON): a pod sandbox's config, or a container's.
const (
	labelSandbox   = "io.berth.cri.sandbox"
	labelContainer = "io.berth.cri.container"
)

// PauseImage is the image of every pod sandbox: berth-init --pause alone,
// made in the store at the first pod from the berth-init beside berthd.
// The sandbox's process holds the pod's namespaces (network, IPC and, when
// shared, PID) and does nothing else; containers take its host name.
const PauseImage = "localhost/berth-pause:1"

// sandboxState is what becomes known of a sandbox after it is made: its
// addresses, and whether it is (still) on the network. Kept in
// <state>/sandboxes/<id>.json.
type sandboxState struct {
	Netns     string // where the pod's network namespace is pinned
	IPs       []string
	NetworkOn bool
}

func (s *Server) statePath(id string) string {
	return filepath.Join(s.StateDir, "sandboxes", id+".json")
}

func (s *Server) readState(id string) sandboxState {
	var st sandboxState
	if b, err := os.ReadFile(s.statePath(id)); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	return st
}

func (s *Server) writeState(id string, st sandboxState) error {
	b, _ := json.Marshal(st)
	if err := os.MkdirAll(filepath.Dir(s.statePath(id)), 0o700); err != nil {
		return err
	}
	tmp := s.statePath(id) + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.statePath(id))
}

// ensurePause makes PauseImage in the store if it is not there.
func (s *Server) ensurePause() error {
	if _, err := s.Images.Get(PauseImage); err == nil {
		return nil
	}
	bin, err := s.Engine.InitBinary()
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "pause", Mode: 0o755, Size: int64(len(raw)), ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	tw.Write(raw)
	tw.Close()
	_, err = s.Images.Import(&buf, image.ImportOptions{Ref: PauseImage, Message: "berth's pod sandbox: berth-init --pause",
		Change: func(c *dockerspec.DockerOCIImageConfig) error {
			c.Entrypoint = []string{"/pause", "--pause"}
			return nil
		}})
	return err
}

// sandbox is a pod sandbox as stored: its engine record and config.
type sandbox struct {
	rec engine.Record
	cfg *runtimeapi.PodSandboxConfig
}

func (sb sandbox) ready() bool { return sb.rec.State.Running() }

// hostNetwork: the pod uses the node's network namespace.
func (sb sandbox) hostNetwork() bool {
	return sb.cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetNetwork() == runtimeapi.NamespaceMode_NODE
}

func sandboxOf(r engine.Record) (sandbox, bool) {
	raw, ok := r.Config.Labels[labelSandbox]
	if !ok {
		return sandbox{}, false
	}
	cfg := &runtimeapi.PodSandboxConfig{}
	if err := json.Unmarshal([]byte(raw), cfg); err != nil {
		return sandbox{}, false
	}
	return sandbox{rec: r, cfg: cfg}, true
}

// findSandbox resolves a sandbox id (or a unique prefix of one).
func (s *Server) findSandbox(id string) (sandbox, error) {
	return findOne(s, id, "sandbox", sandboxOf)
}

// objects are the CRI objects of a kind: the records that of reads as
// one and keep says to (nil: all).
func objects[T any](s *Server, of func(engine.Record) (T, bool), keep func(engine.Record, T) bool) []T {
	var out []T
	for _, r := range s.Engine.Records(Namespace) {
		if obj, ok := of(r); ok && (keep == nil || keep(r, obj)) {
			out = append(out, obj)
		}
	}
	return out
}

// idLabelFilter is what every CRI list filter has: an id (or a prefix
// of one) and labels.
type idLabelFilter interface {
	GetId() string
	GetLabelSelector() map[string]string
}

// passes: f names id (or none) and its labels are all in labels.
func passes(f idLabelFilter, id string, labels map[string]string) bool {
	return strings.HasPrefix(id, f.GetId()) && selects(f.GetLabelSelector(), labels)
}

// findOne resolves the id (or a unique prefix of one) of a CRI object of
// a kind: the records that of reads as one.
func findOne[T any](s *Server, id, kind string, of func(engine.Record) (T, bool)) (T, error) {
	var none T
	if id == "" {
		return none, status.Errorf(codes.InvalidArgument, "no %s id given", kind)
	}
	found := objects(s, of, func(r engine.Record, _ T) bool { return strings.HasPrefix(r.ID, id) })
	switch len(found) {
	case 0:
		return none, status.Errorf(codes.NotFound, "an error occurred when try to find %s %q: not found", kind, id)
	case 1:
		return found[0], nil
	}
	return none, status.Errorf(codes.InvalidArgument, "%s id %q is ambiguous", kind, id)
}

// checkNamespaceMode refuses a mode the CRI does not define.
func checkNamespaceMode(what string, m runtimeapi.NamespaceMode, allowed ...runtimeapi.NamespaceMode) error {
	if slices.Contains(allowed, m) {
		return nil
	}
	return status.Errorf(codes.InvalidArgument, "unsupported %s namespace mode %v", what, m)
}

// safeName keeps a name part usable in an engine name.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, s)
}

// RunPodSandbox makes and starts a pod's sandbox and puts it on the pod
// network. On error nothing of it is left.
func (s *Server) RunPodSandbox(ctx context.Context, r *runtimeapi.RunPodSandboxRequest) (_ *runtimeapi.RunPodSandboxResponse, err error) {
	cfg := r.GetConfig()
	md := cfg.GetMetadata()
	if md.GetName() == "" || md.GetUid() == "" || md.GetNamespace() == "" {
		return nil, status.Error(codes.InvalidArgument, "pod sandbox metadata needs a name, a uid and a namespace")
	}
	if h := r.GetRuntimeHandler(); h != "" && h != Name {
		return nil, status.Errorf(codes.NotFound, "no runtime for %q is configured (berthd has %q)", h, Name)
	}
	nso := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if err := checkNamespaceMode("network", nso.GetNetwork(), runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_NODE); err != nil {
		return nil, err
	}
	if err := checkNamespaceMode("pid", nso.GetPid(), runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER, runtimeapi.NamespaceMode_NODE); err != nil {
		return nil, err
	}
	if err := checkNamespaceMode("ipc", nso.GetIpc(), runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_NODE); err != nil {
		return nil, err
	}
	if nso.GetUsernsOptions() != nil && nso.GetUsernsOptions().GetMode() != runtimeapi.NamespaceMode_NODE {
		return nil, status.Error(codes.InvalidArgument, "user namespaces for pods are not served by berthd's CRI yet")
	}
	if err := s.ensurePause(); err != nil {
		return nil, toStatus(fmt.Errorf("the pod sandbox image: %w", err))
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	c := &ctypes.Config{Image: PauseImage, Hostname: cfg.GetHostname(), Labels: map[string]string{labelSandbox: string(raw)}}
	hc := &ctypes.HostConfig{NetworkMode: "none", LogConfig: ctypes.LogConfig{Type: engine.LogDriverNone},
		Sysctls:     cfg.GetLinux().GetSysctls(),
		SecurityOpt: []string{"no-new-privileges"}}
	if nso.GetNetwork() == runtimeapi.NamespaceMode_NODE {
		hc.NetworkMode, c.Hostname = "host", ""
	}
	if nso.GetIpc() == runtimeapi.NamespaceMode_NODE {
		hc.IpcMode = "host"
	}
	if nso.GetPid() == runtimeapi.NamespaceMode_NODE {
		hc.PidMode = "host"
	}
	hc.CgroupParent = cfg.GetLinux().GetCgroupParent()
	if d := cfg.GetDnsConfig(); d != nil {
		for _, a := range d.Servers {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "DNS server %q: not an IP address", a)
			}
			hc.DNS = append(hc.DNS, ip)
		}
		hc.DNSSearch, hc.DNSOptions = d.Searches, d.Options
	}
	name := fmt.Sprintf("k8s_POD_%s_%s_%s_%d", safeName(md.Name), safeName(md.Namespace), safeName(md.Uid), md.Attempt)
	t0 := time.Now()
	// The pod's network namespace is made and pinned first, so that the
	// CNI plugins set it up while the sandbox starts in it, and can take
	// it down whatever becomes of the sandbox's process.
	netns := ""
	var podNet *libcni.NetworkConfigList
	if hc.NetworkMode != "host" {
		if podNet, err = s.CNI.network(); err != nil {
			return nil, status.Errorf(codes.FailedPrecondition, "pod network: %v", err)
		}
		if netns, err = s.pinNetns(); err != nil {
			return nil, toStatus(fmt.Errorf("the pod's network namespace: %w", err))
		}
		defer func() {
			if err != nil {
				berthnet.UnpinNetns(netns)
			}
		}()
		hc.NetworkMode = ctypes.NetworkMode("ns:" + netns)
	}
	// The ID is made here so that the CNI ADD (which names the pod by
	// it) runs beside the sandbox's create and start.
	id := engine.NewID()
	type added struct {
		ips []string
		err error
	}
	var addc chan added // nil: no ADD under way
	var add *added
	// waitAdd is the ADD's outcome, once it is over.
	waitAdd := func() added {
		if add == nil {
			a := <-addc
			add = &a
		}
		return *add
	}
	if netns != "" {
		// Written first: a berthd stopped during the ADD takes the pod
		// off the network again at its removal.
		if err := s.writeState(id, sandboxState{Netns: netns, NetworkOn: true}); err != nil {
			return nil, err
		}
		addc = make(chan added, 1)
		go func() {
			ips, err := s.CNI.Add(ctx, podNet, id, netns, md, cfg.GetPortMappings())
			addc <- added{ips, err}
		}()
	}
	defer func() {
		if err != nil {
			if addc != nil {
				if waitAdd().err == nil {
					_ = s.CNI.Del(context.WithoutCancel(ctx), id, netns, md, cfg.GetPortMappings())
				}
			}
			os.Remove(s.statePath(id))
		}
	}()
	if _, err := s.Engine.CreateWith(name, c, hc, nil, engine.CreateOptions{ID: id, Namespace: Namespace}); err != nil {
		return nil, toStatus(err)
	}
	defer func() {
		if err != nil {
			_ = s.Engine.Remove(id, engine.RemoveOptions{Force: true})
		}
	}()
	t1 := time.Now()
	if err := s.Engine.Start(id); err != nil {
		return nil, toStatus(fmt.Errorf("start the pod sandbox: %w", err))
	}
	t2 := time.Now()
	if addc != nil {
		a := waitAdd()
		if a.err != nil {
			return nil, status.Errorf(codes.Unknown, "failed to setup network for sandbox %q: %v", id, a.err)
		}
		if err := s.writeState(id, sandboxState{Netns: netns, IPs: a.ips, NetworkOn: true}); err != nil {
			return nil, err
		}
	}
	if s.Log != nil {
		s.Log.Debug("pod sandbox up", "id", id, "create", t1.Sub(t0), "start", t2.Sub(t1), "network", time.Since(t1))
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

// pinNetns makes a pod's network namespace, pinned under RunDir.
func (s *Server) pinNetns() (string, error) {
	dir := filepath.Join(s.RunDir, "netns")
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return "", err
	}
	b := make([]byte, 12)
	rand.Read(b)
	p := filepath.Join(dir, "pod-"+hex.EncodeToString(b))
	return p, berthnet.PinNetns(p)
}

// netnsOf is the path of a sandbox's network namespace: pinned (as its
// state st says), or its process's ("" when neither is there).
func netnsOf(sb sandbox, st sandboxState) string {
	if p := st.Netns; p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if sb.rec.State.Running() && sb.rec.State.Pid > 0 {
		return fmt.Sprintf("/proc/%d/ns/net", sb.rec.State.Pid)
	}
	return ""
}

// takeOffNetwork runs the CNI DEL of a sandbox still on the network and
// unpins its namespace. Its state is written once both are done (a DEL
// run again after a failed unpin is no harm: CNI's DEL is idempotent).
func (s *Server) takeOffNetwork(ctx context.Context, sb sandbox) error {
	st := s.readState(sb.rec.ID)
	if !st.NetworkOn && st.Netns == "" {
		return nil
	}
	if st.NetworkOn {
		if err := s.CNI.Del(ctx, sb.rec.ID, netnsOf(sb, st), sb.cfg.GetMetadata(), sb.cfg.GetPortMappings()); err != nil {
			return status.Errorf(codes.Unknown, "failed to destroy network for sandbox %q: %v", sb.rec.ID, err)
		}
	}
	if st.Netns != "" {
		if err := berthnet.UnpinNetns(st.Netns); err != nil {
			return toStatus(err)
		}
	}
	return s.writeState(sb.rec.ID, sandboxState{IPs: st.IPs})
}

// podContainers are the containers of sandbox id.
func (s *Server) podContainers(id string) []criContainer {
	return objects(s, containerOf, func(_ engine.Record, c criContainer) bool { return c.meta.Sandbox == id })
}

// stopNow kills a running container (a pod's, or its sandbox) at once;
// one that is gone or stopped meanwhile is no error.
func (s *Server) stopNow(rec engine.Record) error {
	if !rec.State.Running() {
		return nil
	}
	zero := 0
	if err := s.Engine.Stop(rec.ID, "SIGKILL", &zero); err != nil && !errdefs.NotFound(err) && !errdefs.Conflict(err) {
		return toStatus(err)
	}
	return nil
}

// StopPodSandbox stops a pod's containers and its sandbox and takes it
// off the network. Stopping a stopped or unknown pod is no error, as the
// CRI asks (containerd 1.6 answers NotFound for an unknown one).
func (s *Server) StopPodSandbox(ctx context.Context, r *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	sb, err := s.findSandbox(r.GetPodSandboxId())
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	for _, c := range s.podContainers(sb.rec.ID) {
		if err := s.stopNow(c.rec); err != nil {
			return nil, err
		}
	}
	if err := s.takeOffNetwork(ctx, sb); err != nil {
		return nil, err
	}
	if err := s.stopNow(sb.rec); err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// RemovePodSandbox removes a pod with its containers (running or not);
// one already gone is no error.
func (s *Server) RemovePodSandbox(ctx context.Context, r *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	sb, err := s.findSandbox(r.GetPodSandboxId())
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	for _, c := range s.podContainers(sb.rec.ID) {
		if err := s.Engine.Remove(c.rec.ID, engine.RemoveOptions{Force: true}); err != nil && !errdefs.NotFound(err) {
			return nil, toStatus(err)
		}
	}
	if err := s.takeOffNetwork(ctx, sb); err != nil {
		return nil, err
	}
	if err := s.Engine.Remove(sb.rec.ID, engine.RemoveOptions{Force: true}); err != nil && !errdefs.NotFound(err) {
		return nil, toStatus(err)
	}
	if err := os.Remove(s.statePath(sb.rec.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

func (sb sandbox) state() runtimeapi.PodSandboxState {
	if sb.ready() {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

// PodSandboxStatus describes a sandbox.
func (s *Server) PodSandboxStatus(ctx context.Context, r *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.findSandbox(r.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	st := &runtimeapi.PodSandboxStatus{Id: sb.rec.ID, Metadata: sb.cfg.Metadata, State: sb.state(),
		CreatedAt: sb.rec.Created.UnixNano(), Labels: sb.cfg.Labels, Annotations: sb.cfg.Annotations,
		RuntimeHandler: Name,
		Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{
			Options: sb.cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()}}}
	if ips := s.readState(sb.rec.ID).IPs; len(ips) > 0 && !sb.hostNetwork() {
		st.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: ips[0]}
		for _, ip := range ips[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: st}
	if r.GetVerbose() {
		info, _ := json.Marshal(map[string]any{"pid": sb.rec.State.Pid, "engineName": sb.rec.Name, "image": PauseImage})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// ListPodSandbox lists the sandboxes the filter selects.
func (s *Server) ListPodSandbox(ctx context.Context, r *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f := r.GetFilter()
	out := &runtimeapi.ListPodSandboxResponse{}
	for _, sb := range objects(s, sandboxOf, nil) {
		if !passes(f, sb.rec.ID, sb.cfg.Labels) || f.GetState() != nil && f.GetState().GetState() != sb.state() {
			continue
		}
		out.Items = append(out.Items, &runtimeapi.PodSandbox{Id: sb.rec.ID, Metadata: sb.cfg.Metadata, State: sb.state(),
			CreatedAt: sb.rec.Created.UnixNano(), Labels: sb.cfg.Labels, Annotations: sb.cfg.Annotations, RuntimeHandler: Name})
	}
	return out, nil
}

// selects: every label of sel is in labels with its value.
func selects(sel, labels map[string]string) bool {
	for k, v := range sel {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
