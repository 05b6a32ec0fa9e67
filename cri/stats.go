package cri

import (
	"context"
	"strings"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// stats are a container's usage: its writable layer's, and CPU and
// memory while it runs.
func (s *Server) stats(c criContainer) *runtimeapi.ContainerStats {
	now := time.Now().UnixNano()
	out := &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{Id: c.rec.ID, Metadata: c.meta.Metadata,
		Labels: c.meta.Labels, Annotations: c.meta.Annotations}}
	if n, err := s.Images.RootfsUsage(c.rec.ID); err == nil {
		out.WritableLayer = &runtimeapi.FilesystemUsage{Timestamp: now, UsedBytes: &runtimeapi.UInt64Value{Value: uint64(n)},
			FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: s.DataRoot}}
	}
	st, err := s.Engine.Stats(c.rec.ID, nil)
	if err != nil {
		return out
	}
	out.Cpu = &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: st.CPUStats.CPUUsage.TotalUsage}}
	out.Memory = &runtimeapi.MemoryUsage{Timestamp: now, WorkingSetBytes: &runtimeapi.UInt64Value{Value: workingSet(st.MemoryStats)},
		UsageBytes: &runtimeapi.UInt64Value{Value: st.MemoryStats.Usage}}
	return out
}

// workingSet is memory in use as the kubelet counts it: usage less the
// inactive page cache (cgroup v1's total_inactive_file, v2's
// inactive_file).
func workingSet(m ctypes.MemoryStats) uint64 {
	for _, k := range []string{"total_inactive_file", "inactive_file"} {
		if v, ok := m.Stats[k]; ok {
			return m.Usage - min(v, m.Usage)
		}
	}
	return m.Usage
}

// ContainerStats reports one container's usage.
func (s *Server) ContainerStats(ctx context.Context, r *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.findContainer(r.GetContainerId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: s.stats(c)}, nil
}

// ListContainerStats reports the usage of the containers the filter
// selects.
func (s *Server) ListContainerStats(ctx context.Context, r *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	f := r.GetFilter()
	out := &runtimeapi.ListContainerStatsResponse{}
	for _, c := range objects(s, containerOf, nil) {
		if passes(f, c.rec.ID, c.meta.Labels) && strings.HasPrefix(c.meta.Sandbox, f.GetPodSandboxId()) {
			out.Stats = append(out.Stats, s.stats(c))
		}
	}
	return out, nil
}

// podStats is a pod's usage: its sandbox's and its containers' summed.
func (s *Server) podStats(sb sandbox) *runtimeapi.PodSandboxStats {
	now := time.Now().UnixNano()
	var cpu, ws, usage uint64
	lin := &runtimeapi.LinuxPodSandboxStats{}
	for _, c := range s.podContainers(sb.rec.ID) {
		st := s.stats(c)
		lin.Containers = append(lin.Containers, st)
		cpu += st.GetCpu().GetUsageCoreNanoSeconds().GetValue()
		ws += st.GetMemory().GetWorkingSetBytes().GetValue()
		usage += st.GetMemory().GetUsageBytes().GetValue()
	}
	if st, err := s.Engine.Stats(sb.rec.ID, nil); err == nil {
		cpu += st.CPUStats.CPUUsage.TotalUsage
		ws += workingSet(st.MemoryStats)
		usage += st.MemoryStats.Usage
	}
	lin.Cpu = &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cpu}}
	lin.Memory = &runtimeapi.MemoryUsage{Timestamp: now, WorkingSetBytes: &runtimeapi.UInt64Value{Value: ws}, UsageBytes: &runtimeapi.UInt64Value{Value: usage}}
	return &runtimeapi.PodSandboxStats{Attributes: &runtimeapi.PodSandboxAttributes{Id: sb.rec.ID, Metadata: sb.cfg.Metadata,
		Labels: sb.cfg.Labels, Annotations: sb.cfg.Annotations}, Linux: lin}
}

// PodSandboxStats reports a pod's usage.
func (s *Server) PodSandboxStats(ctx context.Context, r *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	sb, err := s.findSandbox(r.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: s.podStats(sb)}, nil
}

// ListPodSandboxStats reports the usage of the pods the filter selects.
func (s *Server) ListPodSandboxStats(ctx context.Context, r *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	f := r.GetFilter()
	out := &runtimeapi.ListPodSandboxStatsResponse{}
	for _, sb := range objects(s, sandboxOf, nil) {
		if passes(f, sb.rec.ID, sb.cfg.Labels) {
			out.Stats = append(out.Stats, s.podStats(sb))
		}
	}
	return out, nil
}
