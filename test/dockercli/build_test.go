package dockercli

import (
	"archive/tar"
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// buildDocker runs docker build (the classic builder: no buildx plugin)
// in dir and returns its combined output and exit code.
func (d *daemon) buildDocker(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("docker", append([]string{"build"}, append(args, ".")...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "DOCKER_CONFIG="+filepath.Join(d.dir, "docker-config"), "DOCKER_BUILDKIT=0")
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("docker build: %v", err)
	}
	return string(out), code
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// leftovers counts what builds may leave: containers, writable roots and
// mounts under the daemon's directory.
func (d *daemon) leftovers(t *testing.T) (string, int, int) {
	t.Helper()
	ps := strings.TrimSpace(d.must(t, "ps", "-aq"))
	rw, _ := os.ReadDir(filepath.Join(d.dir, "data", "storage", "rw"))
	return ps, len(rw), d.readHostState(t).mounts
}

// TestBuildWithDockerCLI: docker build against berthd, every instruction
// of the classic builder, a multi-stage build, the cache, and the built
// image run with its config honoured.
func TestBuildWithDockerCLI(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	ctx := t.TempDir()
	files := map[string]string{
		".dockerignore":   "secret.txt\n*.log\n",
		"secret.txt":      "do not send",
		"debug.log":       "nor this",
		"src/a.txt":       "A",
		"src/sub/b.txt":   "B",
		"conf/one.conf":   "1",
		"conf/two.conf":   "2",
		"conf/three.ini":  "3",
		"Dockerfile.fail": "FROM busybox\nRUN echo to-stdout; echo to-stderr >&2; exit 7\n",
		"Dockerfile": `ARG BASE=busybox
FROM $BASE AS builder
ARG GREETING=hello
ENV APP_HOME=/app
WORKDIR $APP_HOME
COPY src/ ./src/
COPY conf/*.conf /etc/app/
RUN echo "$GREETING world" > greeting && cat greeting
RUN ["sh", "-c", "echo exec-form > exec.txt"]
SHELL ["/bin/sh", "-e", "-c"]
RUN test -f /app/src/sub/b.txt && test ! -e /app/secret.txt
FROM busybox
LABEL org.berth.test=build
COPY --from=builder /app /srv/app
COPY --from=builder --chown=1000:1000 /etc/app/ /etc/app/
ADD layer.tar /opt/
ENV MODE=prod
WORKDIR /srv/app
USER 1000:1000
EXPOSE 8080/tcp 53/udp
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s CMD true
ONBUILD RUN echo triggered
ENTRYPOINT ["sh", "-c"]
CMD ["echo $MODE $(cat greeting) $(id -u) $(pwd) $(cat /opt/from-tar.txt)"]
`,
	}
	writeFiles(t, ctx, files)
	// A tar in the context: ADD extracts it.
	tf, err := os.Create(filepath.Join(ctx, "layer.tar"))
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(tf)
	tw.WriteHeader(&tar.Header{Name: "from-tar.txt", Mode: 0o644, Size: 8, Typeflag: tar.TypeReg})
	tw.Write([]byte("from-tar"))
	tw.Close()
	tf.Close()

	out, code := d.buildDocker(t, ctx, "-t", "app:1", "--build-arg", "GREETING=hi")
	if code != 0 {
		t.Fatalf("docker build: exit %d\n%s", code, out)
	}
	for _, want := range []string{"Step 1/", "hi world", "Successfully built", "Successfully tagged app:1", "Running in", "Removing intermediate container"} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q:\n%s", want, out)
		}
	}
	if got := strings.TrimSpace(d.must(t, "run", "--rm", "app:1")); got != "prod hi world 1000 /srv/app from-tar" {
		t.Errorf("built image runs as %q, want %q", got, "prod hi world 1000 /srv/app from-tar")
	}
	insp := d.must(t, "image", "inspect", "-f", "{{.Config.User}}|{{.Config.StopSignal}}|{{json .Config.ExposedPorts}}|{{json .Config.Volumes}}|{{.Config.Labels}}|{{json .Config.Healthcheck}}|{{json .Config.OnBuild}}", "app:1")
	for _, want := range []string{"1000:1000|SIGINT|", `"53/udp":{}`, `"8080/tcp":{}`, `{"/data":{}}`, "org.berth.test:build", `"Test":["CMD-SHELL","true"]`, `"Interval":5000000000`, `["RUN echo triggered"]`} {
		if !strings.Contains(insp, want) {
			t.Errorf("image config lacks %s: %s", want, insp)
		}
	}
	// The ignored files never reached the context; the globbed COPY took
	// only *.conf, owned as --chown said.
	if got := d.must(t, "run", "--rm", "--entrypoint", "sh", "app:1", "-c", "ls /etc/app; stat -c %u:%g /etc/app/one.conf; cat /srv/app/exec.txt"); got != "one.conf\ntwo.conf\n1000:1000\nexec-form\n" {
		t.Errorf("copied files: %q", got)
	}
	if hist := d.must(t, "history", "--no-trunc", "app:1"); !strings.Contains(hist, "ENTRYPOINT") || !strings.Contains(hist, "STOPSIGNAL SIGINT") {
		t.Errorf("docker history lacks the instructions:\n%s", hist)
	}

	// Rebuilt unchanged: every step from the cache.
	out, code = d.buildDocker(t, ctx, "-t", "app:1", "--build-arg", "GREETING=hi")
	if code != 0 || strings.Contains(out, "Running in") || strings.Count(out, "Using cache") < 20 {
		t.Errorf("cached rebuild ran steps (exit %d):\n%s", code, out)
	}
	// One changed file: the steps before its COPY come from the cache,
	// the ones after run again.
	writeFiles(t, ctx, map[string]string{"src/a.txt": "A2"})
	out, _ = d.buildDocker(t, ctx, "-t", "app:1", "--build-arg", "GREETING=hi")
	before, after, _ := strings.Cut(out, "COPY src/ ./src/")
	if !strings.Contains(before, "Using cache") || strings.Contains(strings.SplitN(after, "Step", 2)[0], "Using cache") || !strings.Contains(after, "Running in") {
		t.Errorf("rebuild after a change: want the cache before the changed COPY and not after:\n%s", out)
	}
	// A changed build arg reruns the RUN that sees it.
	if out, _ = d.buildDocker(t, ctx, "-t", "app:2", "--build-arg", "GREETING=bye"); !strings.Contains(out, "bye world") {
		t.Errorf("build arg change did not rerun RUN:\n%s", out)
	}
	if out, _ = d.buildDocker(t, ctx, "--no-cache", "-q", "-t", "app:3"); strings.Contains(out, "Using cache") || !strings.Contains(out, "sha256:") {
		t.Errorf("--no-cache -q: %s", out)
	}
	// --target stops at the first stage.
	if out, code = d.buildDocker(t, ctx, "--target", "builder", "-t", "stage:1"); code != 0 {
		t.Fatalf("--target: exit %d\n%s", code, out)
	}
	if got := d.must(t, "run", "--rm", "stage:1", "cat", "/app/greeting"); got != "hello world\n" {
		t.Errorf("--target builder image: %q", got)
	}
	// ONBUILD triggers run in a build FROM the image.
	child := t.TempDir()
	writeFiles(t, child, map[string]string{"Dockerfile": "FROM app:1\nENV CHILD=1\n"})
	if out, code = d.buildDocker(t, child, "-t", "child:1"); code != 0 || !strings.Contains(out, "triggered") {
		t.Errorf("ONBUILD trigger: exit %d\n%s", code, out)
	}

	// Failures: docker's messages and exit codes, nothing tagged, nothing left.
	out, code = d.buildDocker(t, ctx, "-f", "Dockerfile.fail", "-t", "fail:1")
	if code != 7 || !strings.Contains(out, "returned a non-zero code: 7") || !strings.Contains(out, "to-stderr") {
		t.Errorf("failing RUN: exit %d, want 7:\n%s", code, out)
	}
	bad := t.TempDir()
	for _, c := range []struct{ dockerfile, want string }{
		{"FROM busybox\nRUN true\nFROOM x\n", "Dockerfile parse error on line 3: unknown instruction: FROOM"},
		{"FROM busybox\nCOPY missing.txt /x\n", "file not found in build context"},
		{"FROM busybox\nCOPY ../outside /x\n", "forbidden path outside the build context"},
		{"FROM busybox AS a\nFROM a\n", ""},
		{"FROM busybox\nCOPY --from=nostage-here:1 /x /y\n", "nostage-here"},
		{"FROM busybox\nSTOPSIGNAL SIGNOPE\n", "Invalid signal: SIGNOPE"},
	} {
		writeFiles(t, bad, map[string]string{"Dockerfile": c.dockerfile})
		out, code := d.buildDocker(t, bad, "-t", "bad:1")
		if c.want == "" {
			if code != 0 {
				t.Errorf("%q: exit %d\n%s", c.dockerfile, code, out)
			}
			continue
		}
		if code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("%q: exit %d, want an error with %q:\n%s", c.dockerfile, code, c.want, out)
		}
	}
	if out, code := d.buildDocker(t, bad, "--target", "nope"); code == 0 || !strings.Contains(out, "failed to reach build target nope") {
		t.Errorf("unknown target: exit %d\n%s", code, out)
	}
	if out, _ := d.docker("image", "inspect", "fail:1"); !strings.Contains(out, "No such image") {
		t.Errorf("a failed build tagged its image: %s", out)
	}
	if ps, rw, mounts := d.leftovers(t); ps != "" || rw != 0 || mounts != 0 {
		t.Errorf("builds left containers %q, %d writable roots, %d mounts", ps, rw, mounts)
	}

	// Intermediate images are hidden from docker images, shown with -a,
	// and removing the image removes its untagged chain.
	if n, all := len(strings.Fields(d.must(t, "images", "-q"))), len(strings.Fields(d.must(t, "images", "-aq"))); all <= n {
		t.Errorf("docker images -a shows %d, docker images %d: intermediate images not hidden", all, n)
	}
	before1 := len(strings.Fields(d.must(t, "images", "-aq")))
	rmi := d.must(t, "rmi", "child:1")
	if strings.Count(rmi, "Deleted:") < 2 {
		t.Errorf("rmi child:1 removed no parent chain:\n%s", rmi)
	}
	if after1 := len(strings.Fields(d.must(t, "images", "-aq"))); after1 >= before1 {
		t.Errorf("images before rmi %d, after %d", before1, after1)
	}
}

// TestCommitAndDiffWithDockerCLI: docker diff lists what a container
// changed as docker prints it, and docker commit makes an image of it.
func TestCommitAndDiffWithDockerCLI(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	d.must(t, "run", "-d", "--name", "c1", "busybox", "sh", "-c", "echo x > /tmp/new; rm /etc/group; mkdir -p /var/y; touch /ready; sleep 60")
	t.Cleanup(func() { d.docker("rm", "-f", "c1") })
	for i := 0; i < 100; i++ {
		if _, err := d.docker("exec", "c1", "test", "-e", "/ready"); err == nil {
			break
		}
	}
	diff := d.must(t, "diff", "c1")
	want := "C /etc\nD /etc/group\nA /ready\nC /tmp\nA /tmp/new\nA /var\nA /var/y\n"
	if diff != want {
		t.Errorf("docker diff:\n%s\nwant:\n%s", diff, want)
	}
	id := strings.TrimSpace(d.must(t, "commit", "-c", `CMD ["cat", "/tmp/new"]`, "-c", "ENV K=v", "-m", "a message", "-a", "someone", "c1", "snap:1"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Errorf("commit printed %q", id)
	}
	if got := d.must(t, "run", "--rm", "snap:1"); got != "x\n" {
		t.Errorf("committed image's CMD printed %q", got)
	}
	if got, code := d.stdout(t, "", "run", "--rm", "snap:1", "sh", "-c", "echo $K; test -e /etc/group"); got != "v\n" || code != 1 {
		t.Errorf("committed image: env and deletion: %q exit %d", got, code)
	}
	if got := d.must(t, "inspect", "-f", "{{.Author}}|{{.Comment}}", "snap:1"); got != "someone|a message\n" {
		t.Errorf("author and comment: %q", got)
	}
	if out, err := d.docker("commit", "-c", "RUN true", "c1"); err == nil || !strings.Contains(out, "RUN is not a valid change command") {
		t.Errorf("commit --change RUN: %v %s", err, out)
	}
	if out, err := d.docker("diff", "nosuch"); err == nil || !strings.Contains(out, "No such container") {
		t.Errorf("diff of a missing container: %v %s", err, out)
	}
}

// TestSignalsAndUnknownRoutes: a container's processes start with no
// signal ignored or blocked (Ctrl-C reaches them, as under dockerd), and a
// route berthd does not serve answers as dockerd's do.
func TestSignalsAndUnknownRoutes(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	for _, args := range [][]string{
		{"run", "--rm", "busybox", "grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"},
		{"run", "--rm", "--init", "busybox", "grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"},
	} {
		got := d.must(t, args...)
		if got != "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n" {
			t.Errorf("docker %s: %q, want no signal blocked or ignored", strings.Join(args, " "), got)
		}
	}
	code, body := d.get(t, "/v1.50/no/such/route")
	if code != 404 || body["message"] != "page not found" {
		t.Errorf("unknown route: %d %v, want 404 {message: page not found}", code, body)
	}
}

// TestBuildBadContext: a broken context tar, a context larger than what
// berthd unpacks in memory, and a client that goes away mid-build: each
// ends with a clear error or a good image, and nothing left behind — no
// container, writable root, mount, context directory or tagged image.
func TestBuildBadContext(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	api := http.Client{Transport: &http.Transport{DialContext: unixDialer(d.sock)}}
	contexts := func() []string {
		ents, _ := os.ReadDir(filepath.Join(d.dir, "data", "build"))
		var out []string
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "context-") {
				out = append(out, e.Name())
			}
		}
		return out
	}
	nothingLeft := func(what string) {
		t.Helper()
		if ps, rw, mounts := d.leftovers(t); ps != "" || rw != 0 || mounts != 0 {
			t.Errorf("%s left containers %q, %d writable roots, %d mounts", what, ps, rw, mounts)
		}
		if c := contexts(); len(c) != 0 {
			t.Errorf("%s left context directories %v", what, c)
		}
	}

	// A tar cut in the middle of a file.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: 1000})
	tw.Write([]byte("FROM busybox\n"))
	resp, err := api.Post("http://berthd/build?t=broken:1", "application/x-tar", bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "build context") {
		t.Errorf("broken tar: %d %s", resp.StatusCode, body)
	}
	nothingLeft("a broken context")

	// 40 MiB of context: unpacked on disk rather than in memory.
	big := t.TempDir()
	blob := bytes.Repeat([]byte("0123456789abcdef"), 40<<20/16)
	writeFiles(t, big, map[string]string{"Dockerfile": "FROM busybox\nCOPY big.bin /big.bin\nRUN wc -c < /big.bin > /size\nCMD [\"cat\", \"/size\"]\n", "big.bin": string(blob)})
	if out, code := d.buildDocker(t, big, "-t", "big:1"); code != 0 {
		t.Fatalf("40 MiB context: exit %d\n%s", code, out)
	}
	if out := d.must(t, "run", "--rm", "big:1"); strings.TrimSpace(out) != strconv.Itoa(len(blob)) {
		t.Errorf("the big file in the image: %q bytes, want %d", out, len(blob))
	}
	nothingLeft("a big context")

	// The client goes away while a RUN step runs.
	slow := t.TempDir()
	writeFiles(t, slow, map[string]string{"Dockerfile": "FROM busybox\nRUN echo started; sleep 60\n"})
	cmd := exec.Command("docker", "build", "-t", "gone:1", ".")
	cmd.Dir = slow
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "DOCKER_CONFIG="+filepath.Join(d.dir, "docker-config"), "DOCKER_BUILDKIT=0")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() && !strings.Contains(sc.Text(), "started") {
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if ps, rw, mounts := d.leftovers(t); ps == "" && rw == 0 && mounts == 0 && len(contexts()) == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	nothingLeft("a build whose client went away")
	if out, _ := d.docker("image", "inspect", "gone:1"); !strings.Contains(out, "No such image") {
		t.Errorf("a build whose client went away tagged its image: %s", out)
	}
}

// TestBuildHeredocs: RUN with heredocs, as the Dockerfile parser gives
// them and BuildKit runs them: a heredoc that is the whole command runs
// with the shell, one a command reads is passed in its shell text; a
// heredoc script with its own interpreter is refused with a message.
func TestBuildHeredocs(t *testing.T) {
	d := startDaemon(t)
	withBusybox(t, d)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN <<EOF\necho one > /one\necho two >> /one\nEOF\nRUN cat <<A > /two\nhello heredoc\nA\nCMD [\"cat\", \"/one\", \"/two\"]\n"})
	if out, code := d.buildDocker(t, dir, "-t", "hd:1"); code != 0 {
		t.Fatalf("build: %s", out)
	}
	if out := d.must(t, "run", "--rm", "hd:1"); out != "one\ntwo\nhello heredoc\n" {
		t.Errorf("run: %q", out)
	}
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN <<EOF\n#!/bin/sh\necho x\nEOF\n"})
	if out, code := d.buildDocker(t, dir, "-t", "hd:2"); code == 0 || !strings.Contains(out, "own interpreter") {
		t.Errorf("a #! heredoc: exit %d\n%s", code, out)
	}
}
