package image

import (
	"fmt"
	"strings"

	"github.com/berth-project/berth/errdefs"
	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/name"
)

// dockerHub is how Docker names Docker Hub in full references; the wire
// protocol talks to index.docker.io.
const dockerHub = "docker.io"

// parseRef parses a user's image reference ("busybox", "library/busybox:1.36",
// "localhost:5000/app@sha256:…"), with Docker's defaults: Docker Hub, the
// library/ namespace, the tag latest. insecure registries are spoken to
// over plain HTTP.
func parseRef(s string, insecure []string) (name.Reference, error) {
	if s == "" {
		return nil, fmt.Errorf("image reference is empty: %w", errdefs.ErrInvalid)
	}
	// Docker's grammar first: it refuses names such as "../../evil" that
	// the registry client's looser parser takes.
	if _, err := reference.ParseNormalizedNamed(s); err != nil {
		return nil, errdefs.New(errdefs.ErrInvalid, err.Error())
	}
	ref, err := name.ParseReference(s, name.WithDefaultRegistry(dockerHub))
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w: %v", s, errdefs.ErrInvalid, err)
	}
	for _, h := range insecure {
		if ref.Context().RegistryStr() == h {
			return name.ParseReference(s, name.WithDefaultRegistry(dockerHub), name.Insecure)
		}
	}
	return ref, nil
}

// fullName is the canonical form the store keys tags by:
// "docker.io/library/busybox:latest", "localhost:5000/app@sha256:…".
func fullName(ref name.Reference) string {
	reg := ref.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = dockerHub
	}
	sep := ":"
	if _, ok := ref.(name.Digest); ok {
		sep = "@"
	}
	return reg + "/" + ref.Context().RepositoryStr() + sep + ref.Identifier()
}

// repoName is a reference's repository in full form, "docker.io/library/busybox".
func repoName(ref name.Reference) string {
	reg := ref.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = dockerHub
	}
	return reg + "/" + ref.Context().RepositoryStr()
}

// Familiar shortens a full name the way docker prints it:
// "docker.io/library/busybox:latest" → "busybox:latest".
func Familiar(full string) string {
	s, ok := strings.CutPrefix(full, dockerHub+"/")
	if !ok {
		return full
	}
	if rest, ok := strings.CutPrefix(s, "library/"); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return s
}

// FullName normalises a user's reference to the store's full form
// ("busybox" → "docker.io/library/busybox:latest").
func FullName(ref string) (string, error) {
	r, err := parseRef(ref, nil)
	if err != nil {
		return "", err
	}
	return fullName(r), nil
}

// CheckName reports whether s is a valid image name, in docker's words
// ("invalid reference format") when not.
func (s *Store) CheckName(ref string) error {
	_, err := parseRef(ref, nil)
	return err
}
