package dockercli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPythonSDK drives berthd with the Docker SDK for Python (Debian's
// python3-docker): containers.run returns the output (it reads
// HostConfig.LogConfig.Type to decide), detached runs, exec_run, images.
func TestPythonSDK(t *testing.T) {
	if exec.Command("python3", "-c", "import docker").Run() != nil {
		t.Skip("the Docker SDK for Python is not installed (python3-docker; scripts/deps.sh installs it)")
	}
	d := startDaemon(t)
	withBusybox(t, d)
	script := `
import docker
c = docker.from_env()
print("run", c.containers.run("busybox", ["echo", "hi"], remove=True))
ct = c.containers.run("busybox", ["sleep", "30"], detach=True, name="sdk1")
ct.reload()
print("state", ct.status, ct.attrs["HostConfig"]["LogConfig"]["Type"], bool(ct.attrs["NetworkSettings"]["IPAddress"]))
print("exec", ct.exec_run("echo ex").output)
ct.remove(force=True)
print("images", [i.tags for i in c.images.list()])
`
	cmd := exec.Command("python3", "-c", script)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.Sock, "DOCKER_CONFIG="+filepath.Join(d.Dir, "docker-config"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 SDK script: %v\n%s", err, out)
	}
	want := "run b'hi\\n'\nstate running json-file True\nexec b'ex\\n'\nimages [['busybox:latest']]\n"
	if string(out) != want {
		t.Errorf("SDK output:\n%s\nwant:\n%s", out, want)
	}
	if strings.Contains(string(out), "None") {
		t.Error("containers.run returned None")
	}
}
