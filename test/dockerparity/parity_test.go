package dockerparity

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/test/berthd"
	"github.com/berth-project/berth/test/registry"
)

func TestMain(m *testing.M) { berthd.Main(m) }

// How a scenario's steps are compared.
const (
	// same: exit codes equal and outputs equal once normalised.
	same = iota
	// codeAndText: exit codes equal and both outputs contain want (the
	// engines word some errors differently around the same fact).
	codeAndText
)

// scenario is one everyday use of the docker CLI. setup runs first on
// each engine and must succeed; each step is then compared; cleanup
// always runs. differs, when set, names a difference Berth makes on
// purpose: the steps are run and the outcome logged, never failed.
type scenario struct {
	name    string
	setup   [][]string
	steps   [][]string
	stdin   string
	mode    int
	want    string
	differs string
	cleanup [][]string
	// unordered: output lines are compared as a set (dockerd's diff
	// lists changes in directory-walk order).
	unordered bool
}

func args(s ...string) []string { return s }

// scenarios lists what is compared. {dir} in an argument is a host
// directory the test made (files, empty, busybox.tar).
func scenarios() []scenario {
	sleeper := func(name string, extra ...string) []string {
		return append(append([]string{"run", "-d", "--name", name, "-h", "h1"}, extra...), "busybox", "sleep", "600")
	}
	sleeperHealth := func(name string, extra ...string) []string {
		return sleeper(name, append([]string{"--health-interval", "300ms"}, extra...)...)
	}
	rm := func(names ...string) [][]string { return [][]string{append([]string{"rm", "-f", "-v"}, names...)} }
	return []scenario{
		// Running things.
		{name: "run echo", steps: [][]string{args("run", "--rm", "busybox", "echo", "hello")}},
		{name: "run exit code", steps: [][]string{args("run", "--rm", "busybox", "sh", "-c", "exit 3")}},
		{name: "run missing command", steps: [][]string{args("run", "--rm", "busybox", "nope")}, mode: codeAndText, want: "executable file not found in"},
		{name: "run not executable", steps: [][]string{args("run", "--rm", "busybox", "/etc/passwd")}, mode: codeAndText, want: "permission denied"},
		{name: "run stdin", stdin: "from stdin\n", steps: [][]string{args("run", "--rm", "-i", "busybox", "cat")}},
		{name: "run workdir made", steps: [][]string{args("run", "--rm", "-w", "/made/here", "busybox", "pwd")}},
		{name: "run environment", steps: [][]string{args("run", "--rm", "-h", "h1", "-e", "A=1", "busybox", "sh", "-c", "env | sort")}},
		{name: "run environment as user", steps: [][]string{args("run", "--rm", "-h", "h1", "-u", "1234", "busybox", "sh", "-c", "env | sort")}},
		{name: "run tty environment", steps: [][]string{args("run", "--rm", "-t", "-h", "h1", "busybox", "sh", "-c", "env | sort | tr -d '\\r'")}},
		{name: "user and groups", steps: [][]string{
			args("run", "--rm", "busybox", "id"),
			args("run", "--rm", "--user", "1234:55", "busybox", "id"),
			args("run", "--rm", "--user", "1234", "--group-add", "7", "busybox", "id"),
			args("run", "--rm", "--user", "nobody", "busybox", "id"),
		}},
		{name: "signals start at their defaults", steps: [][]string{args("run", "--rm", "busybox", "grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status")}},
		{name: "stop signal INT reaches the program", setup: [][]string{args("run", "-d", "--name", "sig", "--stop-signal", "INT", "busybox", "sh", "-c", "trap 'exit 7' INT; while :; do sleep 0.1; done")},
			steps: [][]string{args("stop", "-t", "10", "sig"), args("inspect", "-f", "{{.State.ExitCode}}", "sig")}, cleanup: rm("sig")},
		{name: "wait and logs", setup: [][]string{args("run", "-d", "--name", "lg", "busybox", "sh", "-c", "echo a; echo b; exit 4")},
			steps: [][]string{args("wait", "lg"), args("logs", "lg"), args("logs", "--tail", "1", "lg")}, cleanup: rm("lg")},

		// Security defaults and --security-opt.
		{name: "no_new_privs off by default", steps: [][]string{args("run", "--rm", "busybox", "grep", "NoNewPrivs", "/proc/self/status")}},
		{name: "security-opt no-new-privileges", steps: [][]string{
			args("run", "--rm", "--security-opt", "no-new-privileges", "busybox", "grep", "NoNewPrivs", "/proc/self/status"),
			args("run", "--rm", "--security-opt", "no-new-privileges:true", "busybox", "grep", "NoNewPrivs", "/proc/self/status"),
			args("run", "--rm", "--security-opt", "no-new-privileges:false", "busybox", "grep", "NoNewPrivs", "/proc/self/status"),
		}},
		{name: "security-opt seccomp", steps: [][]string{
			args("run", "--rm", "busybox", "grep", "^Seccomp:", "/proc/self/status"),
			args("run", "--rm", "--security-opt", "seccomp:unconfined", "busybox", "grep", "^Seccomp:", "/proc/self/status"),
			args("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "grep", "^Seccomp:", "/proc/self/status"),
		}},
		{name: "security-opt apparmor and label", steps: [][]string{
			args("run", "--rm", "--security-opt", "apparmor=unconfined", "busybox", "true"),
			args("run", "--rm", "--security-opt", "label=disable", "busybox", "true"),
		}},
		{name: "security-opt unknown", steps: [][]string{args("run", "--rm", "--security-opt", "bogus=1", "busybox", "true")}},
		{name: "security-opt seccomp=builtin", steps: [][]string{args("run", "--rm", "--security-opt", "seccomp=builtin", "busybox", "grep", "^Seccomp:", "/proc/self/status")},
			differs: "dockerd 20.10 predates seccomp=builtin (docker 25 added it); berthd takes it as docker 28 does"},
		// Without CAP_SYS_RESOURCE in the bounding set (as on the CI
		// machines) dockerd cannot start a privileged container.
		{name: "privileged", steps: [][]string{args("run", "--rm", "--privileged", "busybox", "true")},
			differs: "berthd gives a privileged container (and --cap-add ALL) the capabilities it holds, as containerd's CRI does; dockerd asks for every capability the kernel knows and fails where one is outside its bounding set"},
		{name: "security-opt seccomp profile file", steps: [][]string{
			args("run", "--rm", "--security-opt", "seccomp={dir}/deny-chmod.json", "busybox", "chmod", "600", "/etc/hostname"),
			args("run", "--rm", "--security-opt", "seccomp={dir}/deny-chmod.json", "busybox", "sh", "-c", "grep ^Seccomp: /proc/self/status; echo ok > /tmp/x; cat /tmp/x"),
		}},

		// Namespaces of another container, and none.
		{name: "network none has loopback up", steps: [][]string{args("run", "--rm", "--network", "none", "busybox", "cat", "/sys/class/net/lo/operstate", "/sys/class/net/lo/flags")}},
		{name: "network container takes its host name and files", setup: [][]string{sleeper("netc")}, steps: [][]string{
			args("run", "--rm", "--network", "container:netc", "busybox", "sh", "-c", "hostname; cat /etc/hostname; grep -c h1 /etc/hosts"),
		}, cleanup: rm("netc")},
		{name: "pid container", setup: [][]string{sleeper("pidc")}, steps: [][]string{
			args("run", "--rm", "--pid", "container:pidc", "busybox", "sh", "-c", "tr '\\0' ' ' < /proc/1/cmdline; echo"),
		}, cleanup: rm("pidc")},
		{name: "pid container not running", setup: [][]string{args("create", "--name", "pidn", "busybox", "true")}, steps: [][]string{
			args("run", "--rm", "--pid", "container:pidn", "busybox", "true"),
		}, mode: codeAndText, want: "is not running", cleanup: rm("pidn")},
		{name: "capabilities", steps: [][]string{
			args("run", "--rm", "busybox", "grep", "^CapEff", "/proc/self/status"),
			args("run", "--rm", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "busybox", "grep", "^CapEff", "/proc/self/status"),
		}},

		// Exec.
		{name: "exec", setup: [][]string{sleeper("ex")}, steps: [][]string{
			args("exec", "ex", "sh", "-c", "env | sort"),
			args("exec", "-u", "1234", "-w", "/tmp", "ex", "sh", "-c", "id; pwd; echo $HOME"),
			args("exec", "-e", "X=y", "ex", "sh", "-c", "echo $X"),
			args("exec", "ex", "sh", "-c", "exit 5"),
		}, cleanup: rm("ex")},
		{name: "exec missing binary", setup: [][]string{sleeper("exm")}, steps: [][]string{args("exec", "exm", "nope")}, mode: codeAndText, want: "executable file not found in", cleanup: rm("exm")},

		// Mounts.
		{name: "tmpfs defaults", steps: [][]string{args("run", "--rm", "--tmpfs", "/run", "busybox", "grep", " /run ", "/proc/mounts")}},
		{name: "tmpfs options merged", steps: [][]string{
			args("run", "--rm", "--tmpfs", "/run:size=64m", "busybox", "grep", " /run ", "/proc/mounts"),
			args("run", "--rm", "--tmpfs", "/run:exec,mode=1700", "busybox", "grep", " /run ", "/proc/mounts"),
			args("run", "--rm", "--mount", "type=tmpfs,dst=/run,tmpfs-size=1048576", "busybox", "grep", " /run ", "/proc/mounts"),
		}},
		{name: "bind a single file", steps: [][]string{args("run", "--rm", "-v", "{dir}/files/hello.txt:/etc/hello.txt:ro", "busybox", "cat", "/etc/hello.txt")}},
		{name: "read-only bind inside a volume", setup: [][]string{args("run", "--rm", "-v", "pvol:/app", "busybox", "sh", "-c", "mkdir -p /app/secrets && echo s > /app/secrets/x")},
			steps:   [][]string{args("run", "--rm", "-v", "pvol:/app", "-v", "{dir}/empty:/app/secrets:ro", "busybox", "sh", "-c", "ls /app/secrets; touch /app/secrets/y")},
			cleanup: [][]string{args("volume", "rm", "pvol")}},
		{name: "volumes", steps: [][]string{
			args("volume", "create", "v1"),
			args("volume", "ls", "-q", "--filter", "name=v1"),
			args("run", "--rm", "-v", "v1:/d", "busybox", "sh", "-c", "echo kept > /d/f"),
			args("run", "--rm", "-v", "v1:/d:ro", "busybox", "sh", "-c", "cat /d/f; touch /d/g"),
			args("volume", "inspect", "-f", "{{.Driver}} {{.Name}}", "v1"),
			args("volume", "rm", "v1"),
		}},

		// Names, DNS, devices, limits.
		{name: "dns search and options", steps: [][]string{
			args("run", "--rm", "--dns-search", "a.example", "--dns-option", "ndots:2", "busybox", "cat", "/etc/resolv.conf"),
			args("run", "--rm", "--dns", "192.0.2.1", "busybox", "cat", "/etc/resolv.conf"),
		}},
		{name: "user network resolv.conf", setup: [][]string{args("network", "create", "pnet")}, steps: [][]string{
			args("run", "--rm", "--network", "pnet", "busybox", "cat", "/etc/resolv.conf"),
			args("run", "--rm", "--network", "pnet", "--dns-search", "x.example", "busybox", "cat", "/etc/resolv.conf"),
		}, cleanup: [][]string{args("network", "rm", "pnet")}},
		{name: "names on a user network", setup: [][]string{args("network", "create", "pnet2"), sleeper("srv", "--network", "pnet2")},
			steps: [][]string{args("run", "--rm", "--network", "pnet2", "busybox", "ping", "-c", "1", "-W", "5", "srv")},
			mode:  codeAndText, want: "1 packets received",
			cleanup: [][]string{args("rm", "-f", "srv"), args("network", "rm", "pnet2")}},
		{name: "add-host host-gateway", steps: [][]string{args("run", "--rm", "--add-host", "gw:host-gateway", "--add-host", "x:192.0.2.9", "busybox", "sh", "-c", "grep -E '(gw|x)$' /etc/hosts")}},
		{name: "host network hostname", steps: [][]string{args("run", "--rm", "--network", "host", "busybox", "hostname")}},
		{name: "device that does not exist", steps: [][]string{args("run", "--rm", "--device", "/dev/nope", "busybox", "true")}},
		{name: "device node", steps: [][]string{args("run", "--rm", "--device", "/dev/null:/dev/mynull", "busybox", "stat", "-c", "%F %t %T %a", "/dev/mynull")}},
		{name: "cpus beyond the host", steps: [][]string{args("run", "--rm", "--cpus", "1000", "busybox", "true")}},
		{name: "memory below the minimum", steps: [][]string{args("run", "--rm", "-m", "1m", "busybox", "true")}},
		{name: "limits in the cgroup", steps: [][]string{
			args("run", "--rm", "-m", "64m", "busybox", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
			args("run", "--rm", "--pids-limit", "50", "busybox", "cat", "/sys/fs/cgroup/pids/pids.max"),
			args("run", "--rm", "--cpus", "1.5", "busybox", "cat", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
		}},

		// Logging drivers.
		{name: "log driver none", setup: [][]string{args("run", "--name", "ln", "--log-driver", "none", "busybox", "echo", "hi")},
			steps:   [][]string{args("logs", "ln"), args("inspect", "-f", "{{.HostConfig.LogConfig.Type}} [{{.LogPath}}]", "ln")},
			cleanup: rm("ln")},
		{name: "log driver local", setup: [][]string{args("run", "--name", "ll", "--log-driver", "local", "busybox", "echo", "hi")},
			steps: [][]string{args("logs", "ll"), args("inspect", "-f", "{{.HostConfig.LogConfig.Type}}", "ll")}, cleanup: rm("ll")},
		{name: "log driver default", setup: [][]string{args("create", "--name", "ld", "busybox", "true")},
			steps: [][]string{args("inspect", "-f", "{{.HostConfig.LogConfig.Type}}", "ld")}, cleanup: rm("ld")},
		{name: "log driver unknown", steps: [][]string{args("run", "--rm", "--log-driver", "nosuchdriver", "busybox", "true")}, mode: codeAndText, want: "nosuchdriver"},

		// Fields scripts read.
		{name: "inspect network fields", setup: [][]string{sleeper("nf")}, steps: [][]string{
			args("inspect", "-f", "{{.NetworkSettings.Gateway}} {{.NetworkSettings.IPPrefixLen}} {{if .NetworkSettings.IPAddress}}ip{{end}} {{if .NetworkSettings.MacAddress}}mac{{end}}", "nf"),
			args("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.Gateway}}{{end}}", "nf"),
		}, cleanup: rm("nf")},
		{name: "ps name filter is a regexp", setup: [][]string{args("create", "--name", "web1", "busybox", "true"), args("create", "--name", "myweb", "busybox", "true")}, steps: [][]string{
			args("ps", "-a", "--filter", "name=^web", "--format", "{{.Names}}"),
			args("ps", "-a", "--filter", "name=web", "--format", "{{.Names}}"),
			args("ps", "-a", "--filter", "name=^/myweb$", "--format", "{{.Names}}"),
		}, cleanup: rm("web1", "myweb"), unordered: true},
		{name: "ps ports and networks", setup: [][]string{sleeper("pp", "-p", "127.0.0.1:8080:80", "--expose", "81")},
			steps: [][]string{args("ps", "--filter", "name=pp", "--format", "{{.Names}}|{{.Ports}}|{{.Networks}}"), args("port", "pp")}, cleanup: rm("pp")},

		// Images.
		{name: "import with changes and message", steps: [][]string{
			args("import", "-c", "VOLUME /data", "-c", `CMD ["sh"]`, "-c", "ENV A=1", "-m", "hello", "{dir}/busybox.tar", "imp:1"),
			args("image", "inspect", "-f", "{{.Config.Volumes}} {{.Config.Cmd}} {{.Config.Env}}", "imp:1"),
			args("history", "--format", "{{.Comment}}", "imp:1"),
			args("run", "--rm", "imp:1", "sh", "-c", "grep -c ' /data ' /proc/mounts; echo $A"),
			args("rmi", "imp:1"),
		}},
		{name: "invalid names", steps: [][]string{args("tag", "busybox", "../../evil"), args("pull", "../../etc")}},
		{name: "tag and rmi", steps: [][]string{args("tag", "busybox", "mine:v1"), args("images", "--format", "{{.Repository}}:{{.Tag}}", "mine"), args("rmi", "mine:v1")}},
		{name: "commit and diff", setup: [][]string{args("run", "--name", "cd", "busybox", "sh", "-c", "mkdir /x && echo a > /x/f && rm /etc/group")},
			steps:   [][]string{args("diff", "cd"), args("commit", "-c", "CMD [\"cat\",\"/x/f\"]", "cd", "committed:1"), args("run", "--rm", "committed:1")},
			cleanup: append(rm("cd"), args("rmi", "committed:1")), unordered: true},
		{name: "rmi lists the layers it deletes", setup: [][]string{args("run", "--name", "rl", "busybox", "touch", "/new"), args("commit", "rl", "removed:1"), args("rm", "rl")},
			steps:   [][]string{args("rmi", "removed:1")},
			differs: "dockerd lists each layer it deletes after the image; berthd lists the images (layers are garbage-collected apart)"},

		{name: "build and history", setup: [][]string{args("build", "-q", "-t", "hist:1", "{dir}/histctx")}, steps: [][]string{
			args("history", "--format", "{{.Size}} {{if eq .ID \"<missing>\"}}missing{{else}}id{{end}} {{.Comment}}", "hist:1"),
			args("history", "--no-trunc", "--format", "{{.CreatedBy}}", "--filter", "", "hist:1"),
			args("run", "--rm", "hist:1"),
		}, cleanup: [][]string{args("rmi", "hist:1")}},

		// docker cp.
		{name: "cp into a running container", setup: [][]string{sleeper("cpr", "-v", "cpvol:/data")}, steps: [][]string{
			args("cp", "{dir}/files/hello.txt", "cpr:/tmp/"),
			args("cp", "{dir}/files", "cpr:/data/"),
			args("exec", "cpr", "sh", "-c", "cat /tmp/hello.txt; ls -R /data | sort"),
			args("cp", "cpr:/data/files/sub/b.txt", "-"),
		}, cleanup: append(rm("cpr"), args("volume", "rm", "cpvol"))},
		{name: "cp from a missing path", setup: [][]string{sleeper("cpe")}, steps: [][]string{args("cp", "cpe:/nope", "{dir}/out")}, cleanup: rm("cpe")},
		// The CLI may also log its own broken pipe here: compare the fact.
		{name: "cp into a missing directory", setup: [][]string{sleeper("cpe2")}, steps: [][]string{args("cp", "{dir}/files/hello.txt", "cpe2:/nope/dir/")},
			mode: codeAndText, want: "no such directory", cleanup: rm("cpe2")},
		{name: "cp into a read-only root", setup: [][]string{sleeper("cpro2", "--read-only")},
			steps: [][]string{args("cp", "{dir}/files/hello.txt", "cpro2:/tmp/")}, mode: codeAndText, want: "container rootfs is marked read-only", cleanup: rm("cpro2")},
		{name: "cp with a stopped container", setup: [][]string{args("create", "--name", "cps", "busybox", "cat", "/new/hello.txt")}, steps: [][]string{
			args("cp", "{dir}/files/hello.txt", "cps:/new"),
			args("start", "-a", "cps"),
		}, cleanup: rm("cps")},

		// docker update.
		{name: "update limits and restart policy", setup: [][]string{sleeper("up", "-m", "64m")}, steps: [][]string{
			args("update", "--memory", "128m", "--memory-swap", "256m", "--cpus", "1.5", "--pids-limit", "50", "--restart", "always", "up"),
			args("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}", "up"),
			args("exec", "up", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/pids/pids.max"),
			args("update", "--cpus", "1000", "up"),
			args("update", "--memory", "1m", "up"),
			args("update", "--memory", "300m", "nosuchcontainer"),
		}, cleanup: rm("up")},
		{name: "update memory above swap", setup: [][]string{sleeper("up2", "-m", "64m", "--memory-swap", "128m")},
			steps: [][]string{args("update", "--memory", "512m", "up2")}, mode: codeAndText, want: "Memory limit should be smaller than already set memoryswap limit", cleanup: rm("up2")},
		{name: "update restart policy of an auto-removed container", setup: [][]string{args("run", "-d", "--rm", "--name", "uar", "busybox", "sleep", "600")},
			steps: [][]string{args("update", "--restart", "always", "uar")}, cleanup: rm("uar")},

		// Lifecycle.
		{name: "pause and unpause", setup: [][]string{sleeper("pz")}, steps: [][]string{
			args("pause", "pz"), args("inspect", "-f", "{{.State.Status}}", "pz"), args("pause", "pz"),
			args("unpause", "pz"), args("inspect", "-f", "{{.State.Status}}", "pz"),
		}, cleanup: rm("pz")},
		{name: "rename and remove", setup: [][]string{args("create", "--name", "rn1", "busybox", "true")}, steps: [][]string{
			args("rename", "rn1", "rn2"), args("inspect", "-f", "{{.Name}}", "rn2"), args("rm", "rn2"), args("rm", "rn2"),
		}},
		{name: "remove a running container", setup: [][]string{sleeper("rr")}, steps: [][]string{args("rm", "rr")}, mode: codeAndText, want: "rr", cleanup: rm("rr")},
		{name: "create without a command", steps: [][]string{args("create", "busybox")}},
		{name: "unknown container and image", steps: [][]string{args("inspect", "nosuch"), args("start", "nosuch"), args("run", "--rm", "nosuchimage:never")}, mode: codeAndText, want: "nosuch"},

		// Health checks. The pause is a container sleeping: the probes
		// run every 300 ms meanwhile.
		{name: "health check states", setup: [][]string{
			sleeperHealth("hh", "--health-cmd", "echo fine"),
			sleeperHealth("hu", "--health-cmd", "exit 1", "--health-retries", "2"),
			sleeperHealth("hs", "--health-cmd", "exit 1", "--health-start-period", "60s"),
			sleeperHealth("ht", "--health-cmd", "sleep 5", "--health-timeout", "200ms", "--health-retries", "1"),
			args("run", "--rm", "busybox", "sleep", "3"),
		}, steps: [][]string{
			args("ps", "--filter", "health=healthy", "--format", "{{.Names}}"),
			args("ps", "--filter", "health=unhealthy", "--format", "{{.Names}}"),
			args("ps", "--filter", "health=starting", "--format", "{{.Names}}"),
			args("inspect", "-f", "{{.State.Health.Status}} {{.State.Health.FailingStreak}} {{(index .State.Health.Log 0).ExitCode}} {{(index .State.Health.Log 0).Output}}", "hh"),
			args("inspect", "-f", "{{.State.Health.Status}} {{(index .State.Health.Log 0).ExitCode}} {{(index .State.Health.Log 0).Output}}", "ht"),
			args("inspect", "-f", "{{.State.Health.Status}} {{.State.Health.FailingStreak}}", "hs"),
			args("stop", "-t", "1", "hh"),
			args("inspect", "-f", "{{.State.Health.Status}}", "hh"),
		}, cleanup: rm("hh", "hu", "hs", "ht"), unordered: true},
		{name: "health check from the image", setup: [][]string{
			args("run", "--name", "himg", "busybox", "true"),
			args("commit", "--change", "HEALTHCHECK --interval=300ms CMD echo from-image", "himg", "healthy:1"),
			args("run", "-d", "--name", "hi", "healthy:1", "sleep", "600"),
			args("run", "-d", "--name", "hn", "--no-healthcheck", "healthy:1", "sleep", "600"),
			args("run", "--rm", "busybox", "sleep", "2"),
		}, steps: [][]string{
			args("inspect", "-f", "{{.Config.Healthcheck.Test}} {{.State.Health.Status}} {{(index .State.Health.Log 0).Output}}", "hi"),
			args("inspect", "-f", "{{.Config.Healthcheck.Test}} {{if .State.Health}}checked{{else}}unchecked{{end}}", "hn"),
		}, cleanup: append(rm("himg", "hi", "hn"), args("rmi", "healthy:1"))},
		{name: "health check options checked", steps: [][]string{
			args("run", "--rm", "--health-interval", "1us", "--health-cmd", "true", "busybox", "true"),
			args("run", "--rm", "--health-retries", "-1", "--health-cmd", "true", "busybox", "true"),
		}},

		// The seccomp profile allows and blocks what Docker's does: ptrace
		// of a process of the container, name_to_handle_at only with
		// CAP_SYS_ADMIN (busybox with the test's checker binary).
		{name: "seccomp profile", setup: [][]string{args("build", "-q", "-t", "checker:1", "{dir}/checker")}, steps: [][]string{
			args("run", "--rm", "checker:1", "sh", "-c", "sleep 30 & /checker ptrace $!"),
			args("run", "--rm", "checker:1", "/checker", "name_to_handle_at"),
			args("run", "--rm", "--security-opt", "seccomp=unconfined", "checker:1", "/checker", "name_to_handle_at"),
		}, cleanup: [][]string{args("rmi", "checker:1")}},

		// Events, attach, prune.
		{name: "events", setup: [][]string{
			args("run", "--name", "ev", "busybox", "true"), args("rm", "ev"),
			args("tag", "busybox", "evt:1"), args("rmi", "evt:1"),
			args("volume", "create", "evv"), args("volume", "rm", "evv"),
			args("network", "create", "evn"), args("network", "rm", "evn"),
		}, steps: [][]string{
			args("events", "--since", "{since}", "--until", "0s", "--filter", "container=ev", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"),
			args("events", "--since", "{since}", "--until", "0s", "--filter", "type=volume", "--format", "{{.Action}} {{.Actor.ID}}"),
			args("events", "--since", "{since}", "--until", "0s", "--filter", "network=evn", "--format", "{{.Action}} {{.Actor.Attributes.name}}"),
			args("events", "--since", "{since}", "--until", "0s", "--filter", "type=image", "--format", "{{.Action}} {{.Actor.Attributes.name}}"),
		}},
		{name: "attach to a running container", setup: [][]string{args("run", "-d", "--name", "at", "busybox", "sh", "-c", "sleep 1; echo late; exit 2")},
			steps: [][]string{args("attach", "at")}, cleanup: rm("at")},
		{name: "container prune", setup: [][]string{args("create", "--name", "pr", "--label", "prune=me", "busybox", "true")},
			steps: [][]string{args("container", "prune", "-f", "--filter", "label=prune=me"), args("ps", "-aq", "--filter", "name=pr")}, cleanup: rm("pr")},

		// Where Berth differs on purpose.
		{name: "live restore", steps: [][]string{args("info", "-f", "{{.LiveRestoreEnabled}}")},
			differs: "berthd keeps containers running across its restarts by default; dockerd needs --live-restore"},
		{name: "runtime", steps: [][]string{args("info", "-f", "{{.DefaultRuntime}}")},
			differs: "berthd runs containers with berth-runtime, dockerd with runc"},
		{name: "traffic counters and bandwidth", setup: [][]string{sleeper("bw", "--label", "io.berth.bandwidth=10mbit")},
			steps:   [][]string{args("inspect", "-f", "{{if .BerthNetworkCounters}}counted{{else}}none{{end}}", "bw")},
			differs: "berthd limits a container's bandwidth (label io.berth.bandwidth, berth run --bandwidth) and reports its traffic in inspect; dockerd has neither", cleanup: rm("bw")},
	}
}

// TestDockerParity runs every scenario against dockerd and berthd and
// compares them. The summary line gives the count the README quotes.
func TestDockerParity(t *testing.T) {
	oracle := startDockerd(t)
	d := berthd.Start(t)
	berth := &target{name: "berthd", sock: d.Sock, cfg: filepath.Join(d.Dir, "docker-config")}
	dir := hostFiles(t)
	for _, tg := range []*target{oracle, berth} {
		if out, code := tg.docker("", "import", filepath.Join(dir, "busybox.tar"), "busybox:latest"); code != 0 {
			t.Fatalf("%s: import busybox: %s", tg.name, out)
		}
	}
	expand := func(a []string) []string {
		out := make([]string, len(a))
		for i, s := range a {
			out[i] = strings.ReplaceAll(s, "{dir}", dir)
		}
		return out
	}
	run := func(tg *target, sc scenario, since string) ([]result, error) {
		expand := func(a []string) []string {
			out := expand(a)
			for i := range out {
				out[i] = strings.ReplaceAll(out[i], "{since}", since)
			}
			return out
		}
		defer func() {
			for _, c := range sc.cleanup {
				tg.docker("", expand(c)...)
			}
		}()
		for _, c := range sc.setup {
			if out, code := tg.docker("", expand(c)...); code != 0 {
				return nil, fmt.Errorf("%s: setup %v: exit %d: %s", tg.name, c, code, out)
			}
		}
		if since != "" {
			// The CLI's "--until 0s" is the current whole second, which
			// dockerd leaves out: let the setup's second pass.
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		}
		var rs []result
		for _, st := range sc.steps {
			out, code := tg.docker(sc.stdin, expand(st)...)
			out = normalise(out)
			if sc.unordered {
				lines := strings.Split(out, "\n")
				sort.Strings(lines)
				out = strings.Join(lines, "\n")
			}
			rs = append(rs, result{out, code})
		}
		return rs, nil
	}
	var identical, sameCode, named int
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			var want, got []result
			var werr, gerr error
			var wg sync.WaitGroup
			wg.Add(2)
			since := ""
			if strings.Contains(fmt.Sprint(sc.steps), "{since}") {
				// A second of its own: dockerd's event times are whole seconds.
				next := time.Now().Truncate(time.Second).Add(time.Second)
				time.Sleep(time.Until(next))
				since = strconv.FormatInt(next.Unix(), 10)
			}
			go func() { defer wg.Done(); want, werr = run(oracle, sc, since) }()
			go func() { defer wg.Done(); got, gerr = run(berth, sc, since) }()
			wg.Wait()
			if werr != nil {
				t.Fatalf("the oracle itself failed: %v", werr)
			}
			if gerr != nil {
				t.Fatal(gerr)
			}
			ok := true
			for i := range sc.steps {
				w, g := want[i], got[i]
				match := w.code == g.code && (sc.mode == same && w.out == g.out ||
					sc.mode == codeAndText && strings.Contains(w.out, sc.want) && strings.Contains(g.out, sc.want))
				if !match {
					ok = false
					msg := fmt.Sprintf("docker %s\n dockerd: %v\n berthd:  %v", strings.Join(sc.steps[i], " "), w, g)
					if sc.differs != "" {
						t.Logf("named difference (%s):\n%s", sc.differs, msg)
					} else {
						t.Error(msg)
					}
				}
			}
			switch {
			case sc.differs != "":
				named++
			case ok && sc.mode == same:
				identical++
			case ok:
				sameCode++
			}
		})
	}
	total := len(scenarios())
	t.Logf("docker parity: %d scenarios: %d identical to dockerd, %d with dockerd's exit codes and the same fact in the message, %d named differences, %d failing",
		total, identical, sameCode, named, total-identical-sameCode-named)
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	for p, body := range files {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// hostFiles makes the host directory scenarios refer to as {dir}.
func hostFiles(t *testing.T) string {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	for p, body := range map[string]string{
		"files/hello.txt":  "hello from the host\n",
		"files/sub/b.txt":  "b\n",
		"files/sub/c.conf": "c\n",
		// A docker-format seccomp profile: everything but chmod.
		"deny-chmod.json": `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["chmod", "fchmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO"}]}`,
	} {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(filepath.Join(dir, "empty"), 0o755)
	writeTree(t, filepath.Join(dir, "histctx"), map[string]string{
		"Dockerfile": "FROM busybox\nENV A=1\nRUN echo built > /built\nENTRYPOINT [\"sh\", \"-c\"]\nCMD echo $A; cat /built\n",
	})
	ctx := filepath.Join(dir, "checker")
	os.Mkdir(ctx, 0o755)
	build := exec.Command("go", "build", "-o", filepath.Join(ctx, "checker"), "github.com/berth-project/berth/test/checker")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the checker: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM busybox\nCOPY checker /checker\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "busybox.tar"), registry.BusyboxTar(t), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
