package dockercli

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/test/berthd"
	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/registry"
)

// berthd --cri-socket serves the CRI's image service over the store the
// Docker API uses: crictl pulls, lists, inspects and removes images; an
// image imported through the Docker API is a CRI image by its normalised
// name, and one pulled through CRI is docker's; a missing image is a
// clear error; the runtime says what it serves. docker info lists the
// daemon's registry mirrors.
func TestCRIImagesShareTheDockerStore(t *testing.T) {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("the docker CLI is not installed")
	}
	crictl := harness.CriTool(t, "crictl")
	sock := filepath.Join(t.TempDir(), "cri.sock")
	bd := berthd.StartWith(t, "", "--cri-socket", sock, "--registry-mirror", "http://127.0.0.1:9", "--registry-mirror", "registry.k8s.io=http://127.0.0.1:8")
	d := &daemon{Daemon: bd, sock: bd.Sock, dir: bd.Dir}
	reg := registry.Start(t, registry.Options{})
	d.Forward(t, reg.Host)
	reg.Push(t, "library/busybox:1.36", registry.Image(t, "amd64", []string{"sh"}, registry.Layer(t, registry.BusyboxTar(t), "gzip")))
	cri := func(args ...string) (string, error) {
		// berthd pulls from its own network namespace, where the registry
		// is forwarded.
		cmd := exec.Command(crictl, append([]string{"--runtime-endpoint", "unix://" + sock, "--image-endpoint", "unix://" + sock, "--timeout", "30s"}, args...)...)
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	// docker info lists the mirrors, as dockerd lists its own.
	if info := d.must(t, "info"); !strings.Contains(info, "Registry Mirrors:\n  http://127.0.0.1:9\n  registry.k8s.io=http://127.0.0.1:8") ||
		!strings.Contains(info, "Insecure Registries:\n  127.0.0.0/8") {
		t.Errorf("docker info's registry section:\n%s", info)
	}
	if out, err := cri("version"); err != nil || !strings.Contains(out, "RuntimeName:  berth") || !strings.Contains(out, "RuntimeApiVersion:  v1") {
		t.Errorf("crictl version: %v\n%s", err, out)
	}
	// Docker's import is a CRI image by its full name.
	withBusybox(t, d)
	if out, err := cri("images"); err != nil || !strings.Contains(out, "docker.io/library/busybox") {
		t.Errorf("crictl images after docker import: %v\n%s", err, out)
	}
	if out, err := cri("inspecti", "docker.io/library/busybox:latest"); err != nil || !strings.Contains(out, `"repoTags"`) {
		t.Errorf("crictl inspecti: %v\n%s", err, out)
	}
	// A CRI pull is docker's image.
	ref := reg.Ref("library/busybox:1.36")
	if out, err := cri("pull", ref); err != nil || !strings.Contains(out, "Image is up to date for sha256:") {
		t.Fatalf("crictl pull: %v\n%s", err, out)
	}
	if out := d.must(t, "images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, ref) {
		t.Errorf("docker images after crictl pull:\n%s", out)
	}
	if out, err := cri("imagefsinfo"); err != nil || !strings.Contains(out, "usedBytes") {
		t.Errorf("crictl imagefsinfo: %v\n%s", err, out)
	}
	// Bad input: an image the registry lacks, named in the error.
	if out, err := cri("pull", reg.Ref("library/nosuch:1")); err == nil || !strings.Contains(out, "nosuch") {
		t.Errorf("crictl pull of a missing image: %v\n%s", err, out)
	}
	// rmi through CRI is gone for docker too; removing it again is no error.
	if out, err := cri("rmi", ref); err != nil {
		t.Errorf("crictl rmi: %v\n%s", err, out)
	}
	if out := d.must(t, "images", "--format", "{{.Repository}}:{{.Tag}}"); strings.Contains(out, ref) {
		t.Errorf("docker still lists %s after crictl rmi:\n%s", ref, out)
	}
	if out, err := cri("inspecti", ref); err == nil {
		t.Errorf("crictl inspecti of a removed image succeeded:\n%s", out)
	}
	// The runtime service answers too (pods: test/critest); no pod yet.
	if out, err := cri("--config", "/dev/null", "pods", "-q"); err != nil || out != "" {
		t.Errorf("crictl pods: %v\n%s", err, out)
	}
}
