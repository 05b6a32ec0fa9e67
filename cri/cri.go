// Package cri serves the Kubernetes Container Runtime Interface (k8s.io/
// cri-api, v1) from berthd's own engine and stores, on a unix socket of
// its own (berthd --cri-socket).
//
// A pod sandbox is an engine container of PauseImage whose process,
// berth-init --pause, holds the pod's namespaces; CNI plugins put its
// network namespace on the pod network. A container of the pod is an
// engine container that joins the sandbox's network, IPC and (when the
// pod shares it) PID namespaces and takes its host name and /etc files.
// What the CRI makes is in the engine namespace "k8s.io": not in the
// Docker API's lists. Its log is written in the CRI's format where the
// kubelet asks. Images are the Docker API's store: an image pulled,
// built or loaded through either is the other's by its normalised name
// (docker.io/library/busybox:latest). Exec, attach and port forwarding
// are served by a streaming server on a loopback port.
package cri

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"

	"github.com/berth-project/berth/engine"
	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/image"
)

// Name and APIVersion are what Version reports.
const (
	Name       = "berth"
	APIVersion = "v1"
)

// Server is the CRI server over one engine and image store.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer
	Images       *image.Store
	Engine       *engine.Engine
	BerthVersion string // berthd's
	// DataRoot is where the image store keeps its files, for ImageFsInfo.
	DataRoot string
	// StateDir holds what the CRI keeps of its pods beyond the engine's
	// records; RunDir what lasts until the host restarts (pinned pod
	// network namespaces).
	StateDir, RunDir string
	// CNI puts pods on the network; nil: pods get the node's network only.
	CNI *CNI
	// StreamAddr is the streaming server's address ("": 127.0.0.1, a
	// free port).
	StreamAddr string
	// Log takes the debug lines of calls and pod starts (nil: none).
	Log *slog.Logger

	stream streaming.Server

	fsInfoMu sync.Mutex
	fsInfo   *runtimeapi.ImageFsInfoResponse
	fsInfoAt time.Time
}

// Serve listens on the unix socket path (made anew, 0660) and serves
// until ctx ends.
func (s *Server) Serve(ctx context.Context, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("--cri-socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		return err
	}
	srv, sl, err := s.newStreamServer(s.StreamAddr)
	if err != nil {
		l.Close()
		return err
	}
	s.stream = srv
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second}
	go hs.Serve(sl)
	g := grpc.NewServer(grpc.UnaryInterceptor(s.logCall))
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	runtimeapi.RegisterImageServiceServer(g, s)
	go func() {
		<-ctx.Done()
		g.Stop()
		hs.Close()
	}()
	return g.Serve(l)
}

// logCall logs each call's method, time taken and error at debug level.
func (s *Server) logCall(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if s.Log == nil || !s.Log.Enabled(ctx, slog.LevelDebug) {
		return h(ctx, req)
	}
	t := time.Now()
	resp, err := h(ctx, req)
	s.Log.Debug("CRI call", "method", info.FullMethod, "took", time.Since(t), "err", err)
	return resp, err
}

// Version names the runtime and the CRI version it speaks.
func (s *Server) Version(ctx context.Context, r *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: Name, RuntimeVersion: s.BerthVersion, RuntimeApiVersion: APIVersion}, nil
}

// Status reports the runtime ready, and the network ready when a CNI
// configuration is there (else why not).
func (s *Server) Status(ctx context.Context, r *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	netCond := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	if err := s.CNI.Ready(); err != nil {
		netCond.Status, netCond.Reason, netCond.Message = false, "NetworkPluginNotReady", err.Error()
	}
	// One handler, the default and by name: neither recursive read-only
	// mounts nor pod user namespaces are served yet.
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true}, netCond,
	}}, RuntimeHandlers: []*runtimeapi.RuntimeHandler{
		{Name: "", Features: &runtimeapi.RuntimeHandlerFeatures{}}, {Name: Name, Features: &runtimeapi.RuntimeHandlerFeatures{}},
	}}, nil
}

// RuntimeConfig tells the kubelet berthd's cgroup driver.
func (s *Server) RuntimeConfig(ctx context.Context, r *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: runtimeapi.CgroupDriver_CGROUPFS}}, nil
}

// UpdateRuntimeConfig takes the kubelet's pod CIDR, which the CNI
// configuration already holds: nothing to do.
func (s *Server) UpdateRuntimeConfig(ctx context.Context, r *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

// ListImages lists the store's images, those the filter names only.
func (s *Server) ListImages(ctx context.Context, r *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	imgs, err := s.Images.List()
	if err != nil {
		return nil, toStatus(err)
	}
	var want *image.Image
	if f := r.GetFilter().GetImage().GetImage(); f != "" {
		if want, err = s.Images.Get(f); errors.Is(err, errdefs.ErrNotFound) {
			return &runtimeapi.ListImagesResponse{}, nil
		} else if err != nil {
			return nil, toStatus(err)
		}
	}
	out := &runtimeapi.ListImagesResponse{}
	for _, img := range imgs {
		if want == nil || img.ID == want.ID {
			out.Images = append(out.Images, toCRI(img))
		}
	}
	return out, nil
}

// ImageStatus describes one image; an image not in the store is no
// error, and no image.
func (s *Server) ImageStatus(ctx context.Context, r *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	img, err := s.Images.Get(r.GetImage().GetImage())
	if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrInvalid) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &runtimeapi.ImageStatusResponse{Image: toCRI(img)}, nil
}

// PullImage pulls into the store, with the credentials the kubelet gives
// if any, and returns the image's id.
func (s *Server) PullImage(ctx context.Context, r *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	var po image.PullOptions
	if a := r.GetAuth(); a != nil {
		po.Auth = &authn.AuthConfig{Username: a.Username, Password: a.Password, Auth: a.Auth,
			IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
	}
	img, err := s.Images.Pull(ctx, r.GetImage().GetImage(), po)
	if err != nil {
		if ctx.Err() != nil {
			// The caller's deadline or cancel, whatever the transport
			// made of it.
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, toStatus(err)
	}
	return &runtimeapi.PullImageResponse{ImageRef: img.ID.String()}, nil
}

// RemoveImage removes an image with all its names; one not in the store
// is already removed.
func (s *Server) RemoveImage(ctx context.Context, r *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	img, err := s.Images.Get(r.GetImage().GetImage())
	if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrInvalid) {
		return &runtimeapi.RemoveImageResponse{}, nil // no such image: none to remove
	}
	if err != nil {
		return nil, toStatus(err)
	}
	if _, err := s.Images.Remove(img.ID.String(), true); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return nil, toStatus(err)
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

// ImageFsInfo reports the bytes and inodes the image store's files take:
// walked at most every fsInfoMaxAge (the kubelet asks every few
// seconds; containerd also walks its snapshots on a timer).
func (s *Server) ImageFsInfo(ctx context.Context, r *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	s.fsInfoMu.Lock()
	defer s.fsInfoMu.Unlock()
	if s.fsInfo != nil && time.Since(s.fsInfoAt) < fsInfoMaxAge {
		return s.fsInfo, nil
	}
	var usage []*runtimeapi.FilesystemUsage
	for _, d := range []string{"content", "storage/layers"} {
		dir := filepath.Join(s.DataRoot, d)
		var bytes, inodes uint64
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err != nil {
				return nil
			}
			inodes++
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				bytes += uint64(st.Blocks) * 512
			}
			return nil
		})
		usage = append(usage, &runtimeapi.FilesystemUsage{Timestamp: time.Now().UnixNano(),
			FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: dir}, UsedBytes: &runtimeapi.UInt64Value{Value: bytes},
			InodesUsed: &runtimeapi.UInt64Value{Value: inodes}})
	}
	s.fsInfo, s.fsInfoAt = &runtimeapi.ImageFsInfoResponse{ImageFilesystems: usage}, time.Now()
	return s.fsInfo, nil
}

// fsInfoMaxAge is how long ImageFsInfo's walk is served again.
const fsInfoMaxAge = 10 * time.Second

// toCRI is img as the CRI describes an image: its config's user as a uid
// or a name.
func toCRI(img *image.Image) *runtimeapi.Image {
	out := &runtimeapi.Image{Id: img.ID.String(), RepoTags: img.RepoTags, RepoDigests: img.RepoDigests,
		Size: uint64(img.Size), Spec: &runtimeapi.ImageSpec{Image: img.ID.String()}}
	if out.RepoTags == nil {
		out.RepoTags = []string{}
	}
	user, _, _ := strings.Cut(img.Config.Config.User, ":")
	if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
		out.Uid = &runtimeapi.Int64Value{Value: uid}
	} else {
		out.Username = user
	}
	return out
}

// toStatus gives an error its gRPC code, as containerd's CRI does.
func toStatus(err error) error {
	code := codes.Unknown
	switch {
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, errdefs.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, errdefs.ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, errdefs.ErrConflict):
		code = codes.FailedPrecondition
	case errors.Is(err, errdefs.ErrUnavailable):
		code = codes.Unavailable
	}
	return status.Error(code, err.Error())
}
