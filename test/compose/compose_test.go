// Package compose drives berthd with Docker Compose: Debian's
// docker-compose 1.29 (Python, the older API paths) and Compose v5 (Go,
// built from the module proxy), through a project with a health-checked
// dependency, a named volume, name resolution on the project network,
// exec, run, scale, build and down.
package compose

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berth-project/berth/test/berthd"
	"github.com/berth-project/berth/test/registry"
)

func TestMain(m *testing.M) { berthd.Main(m) }

const composeVersion = "v5.6.0"

var (
	buildOnce sync.Once
	v5Bin     string
	v5Err     error
)

// composeV5 builds Compose v5 (go build in its module directory, as
// shared/reference/oracles.md says) into a cache directory of its own
// under the temporary directory, reused by later runs: one copy, never a
// new one per run.
func composeV5(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir := filepath.Join(os.TempDir(), "berth-compose-"+composeVersion)
		v5Bin = filepath.Join(dir, "docker-compose")
		if fi, err := os.Stat(v5Bin); err == nil && fi.Mode()&0o100 != 0 {
			return
		}
		out, err := exec.Command("go", "mod", "download", "-json", "github.com/docker/compose/v5@"+composeVersion).Output()
		if err != nil {
			v5Err = err
			return
		}
		var mod struct{ Dir string }
		if v5Err = json.Unmarshal(out, &mod); v5Err != nil {
			return
		}
		if v5Err = os.MkdirAll(dir, 0o755); v5Err != nil {
			return
		}
		// Built aside and renamed: a run cut short leaves no half binary.
		cmd := exec.Command("go", "build", "-o", v5Bin+".tmp", "./cmd")
		cmd.Dir = mod.Dir
		if out, err := cmd.CombinedOutput(); err != nil {
			v5Err = err
			v5Bin = string(out)
			return
		}
		v5Err = os.Rename(v5Bin+".tmp", v5Bin)
	})
	if v5Err != nil {
		t.Fatalf("build Compose %s: %v\n%s", composeVersion, v5Err, v5Bin)
	}
	return v5Bin
}

type project struct {
	t    *testing.T
	bin  string
	dir  string
	d    *berthd.Daemon
	name string
}

func (p *project) run(args ...string) (string, error) {
	cmd := exec.Command(p.bin, append([]string{"-p", p.name}, args...)...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+p.d.Sock, "DOCKER_CONFIG="+filepath.Join(p.d.Dir, "docker-config"), "DOCKER_BUILDKIT=0", "COMPOSE_DOCKER_CLI_BUILD=0")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (p *project) must(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatalf("%s %v: %v\n%s", filepath.Base(p.bin), args, err, out)
	}
	return out
}

const composeFile = `version: "3.8"
services:
  db:
    image: busybox
    command: sh -c "echo db-up; touch /tmp/ready; exec sleep 600"
    healthcheck:
      test: ["CMD", "test", "-e", "/tmp/ready"]
      interval: 1s
      retries: 5
    volumes:
      - data:/data
  web:
    image: busybox
    command: sh -c "ping -c1 -W5 db >/dev/null && echo web-sees-db; exec sleep 600"
    depends_on:
      db:
        condition: service_healthy
  app:
    build: ./app
    image: composed-app:1
    command: ["cat", "/built"]
    profiles: ["build"]
volumes:
  data:
`

func exercise(t *testing.T, bin string) {
	d := berthd.Start(t)
	tarball := filepath.Join(t.TempDir(), "busybox.tar")
	if err := os.WriteFile(tarball, registry.BusyboxTar(t), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := d.Docker("import", tarball, "busybox:latest"); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "app"), 0o755)
	os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(composeFile), 0o644)
	os.WriteFile(filepath.Join(dir, "app", "Dockerfile"), []byte("FROM busybox\nRUN echo built-by-compose > /built\n"), 0o644)
	p := &project{t: t, bin: bin, dir: dir, d: d, name: "bproj"}
	t.Cleanup(func() { p.run("--profile", "build", "down", "-v", "--rmi", "local") })

	p.must("up", "-d")
	ps := p.must("ps")
	if !strings.Contains(ps, "healthy") || strings.Count(ps, "Up") < 2 {
		t.Errorf("ps after up: want db healthy and both up:\n%s", ps)
	}
	logs := ""
	for i := 0; i < 50 && !strings.Contains(logs, "web-sees-db"); i++ {
		logs = p.must("logs", "--no-color")
	}
	if !strings.Contains(logs, "db-up") || !strings.Contains(logs, "web-sees-db") {
		t.Errorf("logs: want db-up and web-sees-db (web resolved db by name after db was healthy):\n%s", logs)
	}
	if out := p.must("exec", "-T", "db", "sh", "-c", "echo in-db > /data/f; cat /data/f"); !strings.Contains(out, "in-db") {
		t.Errorf("exec: %q", out)
	}
	if out := p.must("run", "--rm", "-T", "web", "sh", "-c", "ping -c1 -W5 db >/dev/null && echo run-ok"); !strings.Contains(out, "run-ok") {
		t.Errorf("run: %q", out)
	}
	p.must("up", "-d", "--scale", "web=2")
	if out, _ := d.Docker("ps", "--filter", "label=com.docker.compose.service=web", "-q"); len(strings.Fields(out)) != 2 {
		t.Errorf("scale web=2: %d containers: %q", len(strings.Fields(out)), out)
	}
	p.must("--profile", "build", "build", "app")
	if out := p.must("--profile", "build", "run", "--rm", "-T", "app"); !strings.Contains(out, "built-by-compose") {
		t.Errorf("run of the built service: %q", out)
	}
	p.must("--profile", "build", "down", "-v", "--rmi", "local")
	for _, what := range [][]string{{"ps", "-aq"}, {"volume", "ls", "-q"}, {"network", "ls", "-q", "--filter", "name=bproj"}} {
		if out, _ := d.Docker(what...); strings.TrimSpace(out) != "" {
			t.Errorf("after down -v: docker %v lists %q", what, out)
		}
	}
}

// TestComposeV1 is Debian's docker-compose 1.29 (scripts/deps.sh installs
// it): it creates each container on the project network, then
// disconnects and reconnects it with its aliases before starting it.
func TestComposeV1(t *testing.T) {
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose (Debian) is not installed: scripts/deps.sh installs it")
	}
	exercise(t, bin)
}

// TestComposeV5 is Compose v5 built from the Go module proxy.
func TestComposeV5(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (berthd)")
	}
	exercise(t, composeV5(t))
}
