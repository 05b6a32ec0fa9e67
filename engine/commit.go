package engine

import (
	"fmt"
	"maps"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/errdefs"
	"github.com/berth-project/berth/image"
	"github.com/berth-project/berth/storage"
)

// CommitOptions are docker commit's.
type CommitOptions struct {
	// Pause freezes a running container while its layer is read.
	Pause           bool
	Author, Comment string
	// Ref names the new image; empty leaves it untagged.
	Ref string
	// Change adjusts the config taken from the container (the request's
	// config and --change instructions); nil keeps it.
	Change func(*dockerspec.DockerOCIImageConfig) error
}

// Commit makes an image of a container: its image's layers plus what the
// container wrote, with the container's config.
func (e *Engine) Commit(ref string, o CommitOptions) (digest.Digest, error) {
	var rec Record
	if err := e.withCtr(ref, func(c *ctr) error { rec = c.rec; return nil }); err != nil {
		return "", err
	}
	cfg := imageConfigOf(rec)
	if o.Change != nil {
		if err := o.Change(&cfg); err != nil {
			return "", err
		}
	}
	if o.Pause && rec.State.Status == ctypes.StateRunning {
		if err := e.Pause(rec.ID); err == nil {
			defer e.Unpause(rec.ID)
		}
	}
	var names []string
	if o.Ref != "" {
		names = []string{o.Ref}
	}
	img, err := e.o.Images.Commit(image.CommitOptions{
		Parent: digest.Digest(rec.Image), Config: cfg, Author: o.Author, Names: names,
		Layer:   e.o.Images.RootfsLayerMapped(rec.ID, idsToContainer(rec.IDMap)),
		History: ocispec.History{CreatedBy: commandLine(rec), Comment: o.Comment, Author: o.Author},
	})
	if err != nil {
		return "", fmt.Errorf("commit %s: %w", rec.Name, err)
	}
	return img.ID, nil
}

func commandLine(r Record) string {
	s := r.Path
	for _, a := range r.Args {
		s += " " + a
	}
	return s
}

// imageConfigOf is the image config a commit of r starts from.
func imageConfigOf(r Record) dockerspec.DockerOCIImageConfig {
	var cfg dockerspec.DockerOCIImageConfig
	cc := r.Config
	if cc == nil {
		return cfg
	}
	cfg.User, cfg.Env, cfg.Cmd, cfg.Entrypoint = cc.User, cc.Env, cc.Cmd, cc.Entrypoint
	cfg.WorkingDir, cfg.StopSignal, cfg.Shell, cfg.OnBuild = cc.WorkingDir, cc.StopSignal, cc.Shell, cc.OnBuild
	cfg.Labels = maps.Clone(cc.Labels)
	cfg.Volumes = maps.Clone(cc.Volumes)
	cfg.Healthcheck = cc.Healthcheck
	if len(cc.ExposedPorts) > 0 {
		cfg.ExposedPorts = map[string]struct{}{}
		for p := range cc.ExposedPorts {
			cfg.ExposedPorts[p.String()] = struct{}{}
		}
	}
	return cfg
}

// Changes lists what a container changed in its root, as docker diff.
func (e *Engine) Changes(ref string) ([]storage.Change, error) {
	var id string
	if err := e.withCtr(ref, func(c *ctr) error { id = c.rec.ID; return nil }); err != nil {
		return nil, err
	}
	ch, err := e.o.Images.RootfsChanges(id)
	if errdefs.NotFound(err) {
		return nil, errdefs.New(errdefs.ErrNotFound, "No such container: "+ref)
	}
	return ch, err
}
