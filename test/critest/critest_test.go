package critest

import (
	"archive/tar"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/berth-project/berth/test/berthd"
	"github.com/berth-project/berth/test/harness"
	"github.com/berth-project/berth/test/registry"
)

// mirror is where, in containerd's network namespace, the registries the
// suite pulls from are served: a local registry holding test images built
// here under the names critest asks for.
const mirror = "127.0.0.1:5000"

// The CRI validation suite under both runtime handlers of one containerd:
// every case runc passes, berth-runtime passes. The counts are logged.
func TestCritestBerthPassesWhatRuncPasses(t *testing.T) {
	// containerd 1.6 answers no RuntimeConfig, so the suite gives its
	// pods the cgroup parent /test.slice: removed at the end unless it
	// was there before (rmdir: only empty cgroups go).
	if len(harness.CgroupDirs("/test.slice")) == 0 {
		t.Cleanup(func() {
			for _, d := range harness.CgroupDirs("/test.slice") {
				os.Remove(d)
			}
		})
	}
	critestBoth(t, nil)
}

// The same with containerd and both runtimes on the systemd cgroup driver
// (SystemdCgroup = true), inside a real systemd, as most Kubernetes nodes
// run them.
func TestCritestSystemdCgroupBerthPassesWhatRuncPasses(t *testing.T) {
	critestBoth(t, harness.StartSystemd(t))
}

// critestBoth runs the suite under each handler of a containerd (in sd's
// container if not nil) and compares.
func critestBoth(t *testing.T, sd *harness.Systemd) {
	critest := harness.CriTool(t, "critest")
	reg := registry.Start(t, registry.Options{})
	pushImages(t, reg)
	var extra strings.Builder
	extra.WriteString("[plugins.\"io.containerd.grpc.v1.cri\".registry]\n")
	for _, host := range []string{"registry.k8s.io", "k8s.gcr.io", "gcr.io"} {
		fmt.Fprintf(&extra, "  [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.%q]\n    endpoint = [\"http://%s\"]\n", host, mirror)
	}
	ctd := harness.StartContainerd(t, harness.ContainerdOptions{SandboxImage: "registry.k8s.io/pause:3.9", Extra: extra.String(), Systemd: sd})
	ctd.Forward(t, mirror, reg.Host)

	results := map[string]map[string]string{}
	for _, handler := range []string{"runc", "berth"} {
		results[handler] = run(t, ctd, critest, handler)
	}
	compare(t, "runc", "berth-runtime", results["runc"], results["berth"], 50)
}

// compare logs both outcomes' counts and the cases that failed under both,
// and fails on a case the oracle passes and the other does not, or if the
// oracle passed fewer than min.
func compare(t *testing.T, oracle, other string, want, got map[string]string, min int) {
	t.Helper()
	counts := func(r map[string]string) string {
		n := map[string]int{}
		for _, s := range r {
			n[s]++
		}
		return fmt.Sprintf("%d passed, %d failed, %d skipped", n["passed"], n["failed"], n["skipped"])
	}
	t.Logf("critest %s: %s %s; %s %s", harness.CriToolsVersion, oracle, counts(want), other, counts(got))
	var worse, failedBoth []string
	for name, st := range want {
		switch {
		case st == "passed" && got[name] != "passed":
			worse = append(worse, name+" ("+got[name]+")")
		case st == "failed" && got[name] == "failed":
			failedBoth = append(failedBoth, name)
		}
	}
	slices.Sort(failedBoth)
	slices.Sort(worse)
	if len(failedBoth) > 0 {
		t.Logf("failed under both (this host, not the runtime):\n  %s", strings.Join(failedBoth, "\n  "))
	}
	if len(worse) > 0 {
		t.Errorf("passed under %s, not under %s:\n  %s", oracle, other, strings.Join(worse, "\n  "))
	}
	passed := 0
	for _, st := range want {
		if st == "passed" {
			passed++
		}
	}
	if passed < min {
		t.Errorf("only %d cases passed under %s: the suite did not run", passed, oracle)
	}
}

// berthd's CRI image service against containerd's, by critest's image
// cases: every case containerd passes, berthd passes.
func TestCritestImagesBerthdAsContainerd(t *testing.T) {
	critest, ctd, bd, sock := berthdBesideContainerd(t)
	focus := []string{"--config", "/dev/null", "--ginkgo.focus", "Image Manager", "--ginkgo.junit-report"}
	ctdReport := filepath.Join(ctd.Dir, "critest-containerd-images.xml")
	want := runSuite(t, ctd.OnNode(critest, append([]string{"--runtime-endpoint", "unix://" + ctd.Sock, "--image-endpoint", "unix://" + ctd.Sock}, append(focus, ctdReport)...)...), "containerd", ctdReport)
	bdReport := filepath.Join(bd.Dir, "critest-berthd-images.xml")
	got := runSuite(t, exec.Command(critest, append([]string{"--runtime-endpoint", "unix://" + sock, "--image-endpoint", "unix://" + sock}, append(focus, bdReport)...)...), "berthd", bdReport)
	compare(t, "containerd", "berthd", want, got, 5)
}

// The whole suite against berthd's CRI (pods, containers, streaming,
// images) and against containerd with runc on the same host: every case
// containerd passes, berthd passes.
func TestCritestBerthdAsContainerd(t *testing.T) {
	dir := t.TempDir()
	cniConf := writeCNIConf(t, dir, fmt.Sprintf("bt-bd%d", os.Getpid()%200), fmt.Sprintf("10.232.%d.0/24", os.Getpid()%200))
	critest, ctd, bd, sock := berthdBesideContainerd(t, "--cni-conf-dir", cniConf, "--cni-bin-dir", "/usr/lib/cni")
	want := run(t, ctd, critest, "runc")
	report := filepath.Join(bd.Dir, "critest-berthd.xml")
	// Where berthd runs: its network namespace (pods, host ports, the
	// streaming server on its loopback).
	cmd := exec.Command("busybox", "nsenter", "--net="+bd.Netns(), critest, "--runtime-endpoint", "unix://"+sock,
		"--image-endpoint", "unix://"+sock, "--config", "/dev/null",
		"--ginkgo.junit-report", report, "--ginkgo.no-color", "--ginkgo.timeout", "20m")
	cmd.Dir = bd.Dir
	got := runSuite(t, cmd, "berthd", report)
	compare(t, "containerd", "berthd", want, got, 50)
}

// berthdBesideContainerd starts containerd and berthd (its CRI on sock,
// with args), both pulling the suite's images through registry mirrors
// from the test's registry, and returns critest's path.
func berthdBesideContainerd(t *testing.T, args ...string) (critest string, ctd *harness.Containerd, bd *berthd.Daemon, sock string) {
	critest = harness.CriTool(t, "critest")
	reg := registry.Start(t, registry.Options{})
	pushImages(t, reg)
	var extra strings.Builder
	extra.WriteString("[plugins.\"io.containerd.grpc.v1.cri\".registry]\n")
	sock = filepath.Join(t.TempDir(), "cri.sock")
	args = append([]string{"--cri-socket", sock}, args...)
	for _, host := range []string{"registry.k8s.io", "k8s.gcr.io", "gcr.io"} {
		fmt.Fprintf(&extra, "  [plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.%q]\n    endpoint = [\"http://%s\"]\n", host, mirror)
		args = append(args, "--registry-mirror", host+"=http://"+reg.Host)
	}
	ctd = harness.StartContainerd(t, harness.ContainerdOptions{SandboxImage: "registry.k8s.io/pause:3.9", Extra: extra.String()})
	ctd.Forward(t, mirror, reg.Host)
	bd = berthd.StartWith(t, "", args...)
	bd.Forward(t, reg.Host) // berthd pulls from its own network namespace
	return critest, ctd, bd, sock
}

// run runs the suite with handler where containerd runs (the suite reaches
// pods and host ports, reads logs and makes host mounts there) and
// returns each case's state: passed, failed or skipped.
func run(t *testing.T, ctd *harness.Containerd, critest, handler string) map[string]string {
	t.Helper()
	report := filepath.Join(ctd.Dir, "critest-"+handler+".xml")
	cmd := ctd.OnNode(critest, "--runtime-endpoint", "unix://"+ctd.Sock, "--image-endpoint", "unix://"+ctd.Sock,
		"--runtime-handler", handler, "--config", "/dev/null",
		"--ginkgo.junit-report", report, "--ginkgo.no-color", "--ginkgo.timeout", "20m")
	cmd.Dir = ctd.Dir
	return runSuite(t, cmd, handler, report)
}

// runSuite runs critest's command cmd, which writes its JUnit report to
// report, and returns each case's state.
func runSuite(t *testing.T, cmd *exec.Cmd, label, report string) map[string]string {
	t.Helper()
	handler := label
	start := time.Now()
	out, err := cmd.CombinedOutput()
	// BERTH_CRITEST_LOGS names a directory to keep critest's output in.
	if keep := os.Getenv("BERTH_CRITEST_LOGS"); keep != "" {
		os.WriteFile(filepath.Join(keep, "critest-"+handler+".log"), out, 0o644)
	}
	t.Logf("critest under %s: %v in %s", handler, err, time.Since(start).Round(time.Second))
	b, rerr := os.ReadFile(report)
	if rerr != nil {
		t.Fatalf("critest under %s wrote no report (%v): %v\n%s", handler, err, rerr, harness.Tail(string(out), 60))
	}
	var suites struct {
		Suites []struct {
			Cases []struct {
				Name    string    `xml:"name,attr"`
				Status  string    `xml:"status,attr"`
				Failure *struct{} `xml:"failure"`
				Error   *struct{} `xml:"error"`
				Skipped *struct{} `xml:"skipped"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &suites); err != nil {
		t.Fatalf("critest's report under %s: %v", handler, err)
	}
	res := map[string]string{}
	for _, s := range suites.Suites {
		for _, c := range s.Cases {
			if strings.HasPrefix(c.Name, "[SynchronizedBeforeSuite]") || strings.HasPrefix(c.Name, "[BeforeSuite]") ||
				strings.HasPrefix(c.Name, "[AfterSuite]") || strings.HasPrefix(c.Name, "[SynchronizedAfterSuite]") {
				continue
			}
			st := "passed"
			switch {
			case c.Skipped != nil || c.Status == "skipped" || c.Status == "pending":
				st = "skipped"
			case c.Failure != nil || c.Error != nil:
				st = "failed"
			}
			res[c.Name] = st
		}
	}
	return res
}

// pushImages builds, from Debian's busybox, the images critest pulls
// (cri-tools' images/ directory and Kubernetes' e2e test images say what
// each holds) and pushes them under the paths the registry mirror is
// asked for. One image cannot be made: test-image-digest is asked for by
// a digest of upstream content.
func pushImages(t *testing.T, reg *registry.Registry) {
	t.Helper()
	// busybox as the upstream image has it: applets hard-linked, so that
	// masking one (MaskedPaths /bin/ls) leaves the others; pgrep and ipcs,
	// which Debian's build lacks, as small scripts over /proc.
	var bb []registry.Entry
	for _, e := range registry.BusyboxEntries(t) {
		if e.Type == tar.TypeSymlink && e.Linkname == "/bin/busybox" {
			// (an unpacker may set the header's mode on the shared inode)
			e.Type, e.Linkname, e.Mode = tar.TypeLink, "bin/busybox", 0o755
		}
		bb = append(bb, e)
	}
	base := registry.Layer(t, registry.Tar(t, bb...), "gzip")
	checker, err := os.ReadFile(harness.CheckerBin())
	if err != nil {
		t.Fatal(err)
	}
	dir := func(name string) registry.Entry { return registry.Entry{Name: name, Type: tar.TypeDir, Mode: 0o755} }
	script := func(name, body string) registry.Entry {
		return registry.Entry{Name: name, Mode: 0o755, Body: "#!/bin/sh\n" + body}
	}
	tools := registry.Layer(t, registry.Tar(t,
		dir("etc/"),
		registry.Entry{Name: "etc/passwd", Body: "root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33:www-data:/var/www:/bin/false\n" +
			"default-user:x:1000:1000::/home/default-user:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"},
		registry.Entry{Name: "etc/group", Body: "root:x:0:\nwww-data:x:33:\ndefault-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\nnogroup:x:65534:\n"},
		dir("bin/"),
		script("bin/pgrep", `# pgrep NAME: the pids whose command is NAME.
st=1
for d in /proc/[0-9]*; do
	read -r comm < "$d/comm" 2>/dev/null || continue
	if [ "$comm" = "$1" ]; then echo "${d#/proc/}"; st=0; fi
done
exit $st
`),
		script("bin/ipcs", "# ipcs -m: the shared memory segments of this IPC namespace.\ncat /proc/sysvipc/shm\n"),
		dir("var/"), dir("var/run/"), dir("usr/"), dir("usr/sbin/"), dir("usr/local/"), dir("usr/local/bin/"),
		dir("usr/share/"), dir("usr/share/nginx/"), dir("usr/share/nginx/html/"),
		registry.Entry{Name: "usr/share/nginx/html/index.html", Body: "<title>Welcome to nginx!</title>\n"},
		// A stand-in web server (nginx, httpd): a process of the name it
		// is run by, its pid where nginx writes it, the page on $PORT.
		script("usr/sbin/nginx", `name=${0##*/}
echo $$ > /var/run/$name.pid
echo "$name: serving /usr/share/nginx/html on port $PORT"
httpd -p "$PORT" -h /usr/share/nginx/html
trap 'exit 0' TERM INT QUIT
while :; do sleep 3600 & wait; done
`),
		registry.Entry{Name: "usr/local/bin/httpd-foreground", Type: tar.TypeLink, Linkname: "usr/sbin/nginx", Mode: 0o755},
		// Kubernetes' nonewprivs: a set-uid root program that says what
		// its effective uid became.
		registry.Entry{Name: "usr/local/bin/nnp", Body: string(checker), Mode: 0o4755},
	), "gzip")
	image := func(cmd []string, user string, env []string, files ...registry.Entry) v1.Image {
		layers := []v1.Layer{base, tools}
		if len(files) > 0 {
			layers = append(layers, registry.Layer(t, registry.Tar(t, files...), "gzip"))
		}
		img := registry.Image(t, "amd64", cmd, layers...)
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		cf.Config.User = user
		cf.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/sbin:/bin"}, env...)
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		return img
	}
	const e2e, staging = "e2e-test-images/", "k8s-staging-cri-tools/"
	reg.Push(t, "pause:3.9", image([]string{"sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait; done"}, "", nil))
	reg.Push(t, e2e+"busybox:1.29-2", image([]string{"sh"}, "", nil))
	// nginx's command line says "master process", which a test looks for.
	reg.Push(t, e2e+"nginx:1.14-2", image([]string{"/usr/sbin/nginx", "master process"}, "", []string{"PORT=80"}))
	reg.Push(t, e2e+"httpd:2.4.39-4", image([]string{"httpd-foreground"}, "", []string{"PORT=80"}))
	reg.Push(t, e2e+"nonewprivs:1.3", image([]string{"/usr/local/bin/nnp", "euid"}, "", nil))
	reg.Push(t, staging+"hostnet-nginx-amd64:latest", image([]string{"/usr/sbin/nginx", "master process"}, "", []string{"PORT=12003"}))
	for _, name := range []string{"test-image-1", "test-image-2", "test-image-3", "test-image-latest"} {
		reg.Push(t, staging+name+":latest", image([]string{"sh"}, "", nil, registry.Entry{Name: name, Body: name}))
	}
	same := image([]string{"sh"}, "", nil, registry.Entry{Name: "same-image", Body: "same-image"})
	for _, tag := range []string{"1", "2", "3"} {
		reg.Push(t, staging+"test-image-tags:"+tag, same)
	}
	tagged := image([]string{"sh"}, "", nil, registry.Entry{Name: "test-image-tag", Body: "test-image-tag"})
	for _, tag := range []string{"test", "all"} {
		reg.Push(t, staging+"test-image-tag:"+tag, tagged)
	}
	for name, user := range map[string]string{"test-image-user-uid": "1002", "test-image-user-username": "www-data",
		"test-image-user-uid-group": "1003:1004", "test-image-user-username-group": "www-data:1004", "test-image-predefined-group": "1000"} {
		reg.Push(t, staging+name+":latest", image([]string{"sh"}, user, nil))
	}
}
