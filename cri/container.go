package cri

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-project/berth/engine"
	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/logfile"
)

// containerMeta is what a CRI container keeps of its config on its
// engine record (labelContainer).
type containerMeta struct {
	Sandbox     string
	Metadata    *runtimeapi.ContainerMetadata
	Image       string // as asked for
	Labels      map[string]string
	Annotations map[string]string
	Mounts      []*runtimeapi.Mount
	LogPath     string
}

type criContainer struct {
	rec  engine.Record
	meta containerMeta
}

func containerOf(r engine.Record) (criContainer, bool) {
	raw, ok := r.Config.Labels[labelContainer]
	if !ok {
		return criContainer{}, false
	}
	var m containerMeta
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return criContainer{}, false
	}
	return criContainer{rec: r, meta: m}, true
}

// findContainer resolves a container id (or a unique prefix of one).
func (s *Server) findContainer(id string) (criContainer, error) {
	return findOne(s, id, "container", containerOf)
}

// CreateContainer makes a container in a pod: the pod's network, IPC and
// (when shared) PID namespaces joined, its host name and /etc files.
func (s *Server) CreateContainer(ctx context.Context, r *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	sb, err := s.findSandbox(r.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if !sb.ready() {
		return nil, status.Errorf(codes.FailedPrecondition, "pod sandbox %s is not ready", sb.rec.ID)
	}
	cfg := r.GetConfig()
	md := cfg.GetMetadata()
	if md.GetName() == "" {
		return nil, status.Error(codes.InvalidArgument, "container metadata needs a name")
	}
	if cfg.GetImage().GetImage() == "" {
		return nil, status.Error(codes.InvalidArgument, "no image given")
	}
	img, err := s.Images.Get(cfg.GetImage().GetImage())
	if err != nil {
		if errdefs.NotFound(err) {
			return nil, status.Errorf(codes.NotFound, "failed to get image %q: not found", cfg.GetImage().GetImage())
		}
		return nil, toStatus(err)
	}
	logPath := ""
	if cfg.GetLogPath() != "" {
		dir := sb.cfg.GetLogDirectory()
		if dir == "" {
			return nil, status.Error(codes.InvalidArgument, "a container log path without the pod's log directory")
		}
		logPath = filepath.Join(dir, cfg.GetLogPath())
		if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
			return nil, toStatus(err)
		}
	}
	meta := containerMeta{Sandbox: sb.rec.ID, Metadata: md, Image: cfg.GetImage().GetImage(), Labels: cfg.Labels,
		Annotations: cfg.Annotations, Mounts: cfg.Mounts, LogPath: logPath}
	raw, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	c := &ctypes.Config{Image: img.ID.String(), Entrypoint: cfg.Command, Cmd: cfg.Args, WorkingDir: cfg.WorkingDir,
		Tty: cfg.Tty, OpenStdin: cfg.Stdin, StdinOnce: cfg.StdinOnce, Labels: map[string]string{labelContainer: string(raw)}}
	for _, kv := range cfg.Envs {
		c.Env = append(c.Env, kv.Key+"="+string(kv.Value))
	}
	hc, err := s.hostConfig(sb, cfg)
	if err != nil {
		return nil, err
	}
	lsc := cfg.GetLinux().GetSecurityContext()
	switch {
	case lsc.GetRunAsUser() != nil:
		c.User = strconv.FormatInt(lsc.GetRunAsUser().GetValue(), 10)
	case lsc.GetRunAsUsername() != "":
		c.User = lsc.GetRunAsUsername()
	}
	if g := lsc.GetRunAsGroup(); g != nil {
		if c.User == "" {
			return nil, status.Error(codes.InvalidArgument, "run_as_group needs run_as_user or run_as_username")
		}
		c.User += ":" + strconv.FormatInt(g.GetValue(), 10)
	}
	logOpts := engine.CreateOptions{Namespace: Namespace, LogPath: logPath, LogFormat: logfile.FormatCRI}
	if logPath == "" {
		hc.LogConfig.Type = engine.LogDriverNone
	}
	name := fmt.Sprintf("k8s_%s_%s_%s_%s_%d", safeName(md.Name), safeName(sb.cfg.Metadata.Name),
		safeName(sb.cfg.Metadata.Namespace), safeName(sb.cfg.Metadata.Uid), md.Attempt)
	res, err := s.Engine.CreateWith(name, c, hc, nil, logOpts)
	if err != nil {
		return nil, toStatus(err)
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: res.ID}, nil
}

// hostConfig is a CRI container's config as the engine takes it.
func (s *Server) hostConfig(sb sandbox, cfg *runtimeapi.ContainerConfig) (*ctypes.HostConfig, error) {
	lin := cfg.GetLinux()
	lsc := lin.GetSecurityContext()
	hc := &ctypes.HostConfig{Sysctls: sb.cfg.GetLinux().GetSysctls()}
	nso := lsc.GetNamespaceOptions()
	if err := checkNamespaceMode("pid", nso.GetPid(), runtimeapi.NamespaceMode_POD, runtimeapi.NamespaceMode_CONTAINER,
		runtimeapi.NamespaceMode_NODE, runtimeapi.NamespaceMode_TARGET); err != nil {
		return nil, err
	}
	if sb.hostNetwork() {
		hc.NetworkMode = "host"
	} else {
		hc.NetworkMode = ctypes.NetworkMode("container:" + sb.rec.ID)
	}
	hc.IpcMode = ctypes.IpcMode("container:" + sb.rec.ID)
	if sb.rec.HostConfig.IpcMode == "host" {
		hc.IpcMode = "host"
	}
	switch nso.GetPid() {
	case runtimeapi.NamespaceMode_POD:
		hc.PidMode = ctypes.PidMode("container:" + sb.rec.ID)
	case runtimeapi.NamespaceMode_NODE:
		hc.PidMode = "host"
	case runtimeapi.NamespaceMode_TARGET:
		t, err := s.findContainer(nso.GetTargetId())
		if err != nil {
			return nil, err
		}
		hc.PidMode = ctypes.PidMode("container:" + t.rec.ID)
	}
	for _, m := range cfg.Mounts {
		if m.GetImage().GetImage() != "" {
			return nil, status.Errorf(codes.Unimplemented, "image volumes (%s at %s) are not served by berthd", m.GetImage().GetImage(), m.ContainerPath)
		}
		if m.ContainerPath == "" || m.HostPath == "" {
			return nil, status.Error(codes.InvalidArgument, "a mount needs a host and a container path")
		}
		if _, err := os.Stat(m.HostPath); os.IsNotExist(err) {
			// As containerd: a missing host path is made as a directory.
			if err := os.MkdirAll(m.HostPath, 0o755); err != nil {
				return nil, toStatus(err)
			}
		}
		prop := mount.PropagationRPrivate
		switch m.Propagation {
		case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
			prop = mount.PropagationRSlave
		case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
			prop = mount.PropagationRShared
		}
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: m.HostPath, Target: m.ContainerPath,
			ReadOnly: m.Readonly, BindOptions: &mount.BindOptions{Propagation: prop}})
	}
	for _, d := range cfg.Devices {
		hc.Devices = append(hc.Devices, ctypes.DeviceMapping{PathOnHost: d.HostPath, PathInContainer: d.ContainerPath, CgroupPermissions: d.Permissions})
	}
	hc.Privileged = lsc.GetPrivileged()
	if caps := lsc.GetCapabilities(); caps != nil {
		hc.CapAdd, hc.CapDrop = caps.AddCapabilities, caps.DropCapabilities
	}
	hc.ReadonlyRootfs = lsc.GetReadonlyRootfs()
	for _, g := range lsc.GetSupplementalGroups() {
		hc.GroupAdd = append(hc.GroupAdd, strconv.FormatInt(g, 10))
	}
	if lsc.GetNoNewPrivs() {
		hc.SecurityOpt = append(hc.SecurityOpt, "no-new-privileges")
	}
	sec, err := seccompOpt(lsc)
	if err != nil {
		return nil, err
	}
	hc.SecurityOpt = append(hc.SecurityOpt, sec)
	if lsc.GetMaskedPaths() != nil {
		hc.MaskedPaths = lsc.GetMaskedPaths()
	}
	if lsc.GetReadonlyPaths() != nil {
		hc.ReadonlyPaths = lsc.GetReadonlyPaths()
	}
	if res := lin.GetResources(); res != nil {
		hc.Resources = resources(res)
		if res.OomScoreAdj != 0 {
			hc.OomScoreAdj = int(res.OomScoreAdj)
		}
	}
	hc.CgroupParent = sb.cfg.GetLinux().GetCgroupParent()
	return hc, nil
}

// seccompOpt is the container's seccomp profile as a security option:
// unconfined unless asked, as containerd 1.6 and the kubelet's default.
func seccompOpt(lsc *runtimeapi.LinuxContainerSecurityContext) (string, error) {
	prof := lsc.GetSeccomp()
	kind, path := prof.GetProfileType(), prof.GetLocalhostRef()
	if prof == nil {
		//lint:ignore SA1019 older kubelets (and critest's SeccompProfilePath cases) still send the path form
		switch p := lsc.GetSeccompProfilePath(); {
		case p == "runtime/default" || p == "docker/default":
			kind = runtimeapi.SecurityProfile_RuntimeDefault
		case strings.HasPrefix(p, "localhost/"):
			kind, path = runtimeapi.SecurityProfile_Localhost, strings.TrimPrefix(p, "localhost/")
		case p == "" || p == "unconfined":
			kind = runtimeapi.SecurityProfile_Unconfined
		default:
			return "", status.Errorf(codes.InvalidArgument, "unknown seccomp profile path %q", p)
		}
	}
	switch kind {
	case runtimeapi.SecurityProfile_RuntimeDefault:
		return "seccomp=builtin", nil
	case runtimeapi.SecurityProfile_Localhost:
		raw, err := os.ReadFile(path)
		if err != nil {
			return "", status.Errorf(codes.InvalidArgument, "seccomp profile %q: %v", path, err)
		}
		return "seccomp=" + string(raw), nil
	}
	return "seccomp=unconfined", nil
}

// resources are CRI resources as Docker's.
func resources(r *runtimeapi.LinuxContainerResources) ctypes.Resources {
	return ctypes.Resources{CPUShares: r.CpuShares, CPUPeriod: r.CpuPeriod, CPUQuota: r.CpuQuota,
		Memory: r.MemoryLimitInBytes, MemorySwap: r.MemorySwapLimitInBytes,
		CpusetCpus: r.CpusetCpus, CpusetMems: r.CpusetMems}
}

// StartContainer starts a created container.
func (s *Server) StartContainer(ctx context.Context, r *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := s.findContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	if c.rec.State.Status != ctypes.StateCreated {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is in %s state, not created", c.rec.ID, c.rec.State.Status)
	}
	if err := s.Engine.Start(c.rec.ID); err != nil {
		return nil, toStatus(err)
	}
	return &runtimeapi.StartContainerResponse{}, nil
}

// StopContainer stops a container: its stop signal, then SIGKILL after
// the timeout. A stopped or unknown container is no error, as the CRI
// asks.
func (s *Server) StopContainer(ctx context.Context, r *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, err := s.findContainer(r.GetContainerId())
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if !c.rec.State.Running() {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	t := int(r.GetTimeout())
	if err := s.Engine.Stop(c.rec.ID, "", &t); err != nil && !errdefs.Conflict(err) {
		return nil, toStatus(err)
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// RemoveContainer removes a container, running or not; one already gone
// is no error.
func (s *Server) RemoveContainer(ctx context.Context, r *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	c, err := s.findContainer(r.GetContainerId())
	if status.Code(err) == codes.NotFound {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.Engine.Remove(c.rec.ID, engine.RemoveOptions{Force: true}); err != nil && !errdefs.NotFound(err) {
		return nil, toStatus(err)
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

func (c criContainer) state() runtimeapi.ContainerState {
	switch c.rec.State.Status {
	case ctypes.StateCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case ctypes.StateRunning, ctypes.StatePaused, ctypes.StateRestarting:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case ctypes.StateExited, ctypes.StateDead:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

// ListContainers lists the containers the filter selects.
func (s *Server) ListContainers(ctx context.Context, r *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := r.GetFilter()
	out := &runtimeapi.ListContainersResponse{}
	for _, c := range objects(s, containerOf, nil) {
		if !passes(f, c.rec.ID, c.meta.Labels) || !strings.HasPrefix(c.meta.Sandbox, f.GetPodSandboxId()) ||
			f.GetState() != nil && f.GetState().GetState() != c.state() {
			continue
		}
		out.Containers = append(out.Containers, &runtimeapi.Container{Id: c.rec.ID, PodSandboxId: c.meta.Sandbox,
			Metadata: c.meta.Metadata, Image: &runtimeapi.ImageSpec{Image: c.meta.Image}, ImageRef: c.rec.Image,
			State: c.state(), CreatedAt: c.rec.Created.UnixNano(), Labels: c.meta.Labels, Annotations: c.meta.Annotations,
			ImageId: c.rec.Image})
	}
	return out, nil
}

// ContainerStatus describes a container.
func (s *Server) ContainerStatus(ctx context.Context, r *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.findContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	st := c.rec.State
	out := &runtimeapi.ContainerStatus{Id: c.rec.ID, Metadata: c.meta.Metadata, State: c.state(),
		CreatedAt: c.rec.Created.UnixNano(), Image: &runtimeapi.ImageSpec{Image: c.meta.Image}, ImageRef: c.rec.Image,
		ImageId: c.rec.Image, Labels: c.meta.Labels, Annotations: c.meta.Annotations, Mounts: c.meta.Mounts,
		LogPath: c.meta.LogPath}
	if !st.StartedAt.IsZero() {
		out.StartedAt = st.StartedAt.UnixNano()
	}
	if out.State == runtimeapi.ContainerState_CONTAINER_EXITED {
		out.FinishedAt = st.FinishedAt.UnixNano()
		out.ExitCode = int32(st.ExitCode)
		out.Reason, out.Message = "Completed", st.Error
		switch {
		case st.OOMKilled:
			out.Reason = "OOMKilled"
		case st.ExitCode != 0:
			out.Reason = "Error"
		}
	}
	res := c.rec.HostConfig.Resources
	out.Resources = &runtimeapi.ContainerResources{Linux: &runtimeapi.LinuxContainerResources{
		CpuPeriod: res.CPUPeriod, CpuQuota: res.CPUQuota, CpuShares: res.CPUShares, MemoryLimitInBytes: res.Memory,
		MemorySwapLimitInBytes: res.MemorySwap, CpusetCpus: res.CpusetCpus, CpusetMems: res.CpusetMems,
		OomScoreAdj: int64(c.rec.HostConfig.OomScoreAdj)}}
	resp := &runtimeapi.ContainerStatusResponse{Status: out}
	if r.GetVerbose() {
		info, _ := json.Marshal(map[string]any{"pid": st.Pid, "sandboxID": c.meta.Sandbox, "engineName": c.rec.Name})
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

// UpdateContainerResources changes a container's cgroup limits.
func (s *Server) UpdateContainerResources(ctx context.Context, r *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	c, err := s.findContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	if r.GetLinux() == nil {
		return &runtimeapi.UpdateContainerResourcesResponse{}, nil
	}
	if _, err := s.Engine.Update(c.rec.ID, ctypes.UpdateConfig{Resources: resources(r.GetLinux())}); err != nil {
		return nil, toStatus(err)
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// ReopenContainerLog has a running container's log opened anew at its
// path, after the kubelet moved it away.
func (s *Server) ReopenContainerLog(ctx context.Context, r *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	c, err := s.findContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	if err := s.Engine.ReopenLog(c.rec.ID); err != nil {
		return nil, toStatus(err)
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}
