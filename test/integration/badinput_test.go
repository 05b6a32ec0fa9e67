package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/test/harness"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestBadInput: each broken bundle or argument gets one error line that
// names the field or path, a non-zero exit, and leaves no state directory,
// cgroup, mount or process.
func TestBadInput(t *testing.T) {
	cases := []struct {
		name  string
		setup func(b *harness.Bundle) // edits Spec (written after) or files
		raw   bool                    // setup writes config.json itself
		id    string                  // instead of the bundle's id
		want  string                  // in the error line
	}{
		{name: "missing config.json", raw: true, setup: func(b *harness.Bundle) {}, want: "config.json: no such file"},
		{name: "malformed config.json", raw: true, setup: func(b *harness.Bundle) {
			os.WriteFile(filepath.Join(b.Dir, "config.json"), []byte(`{"ociVersion": "1.2.0", "process": `), 0o644)
		}, want: "malformed JSON"},
		{name: "missing rootfs", setup: func(b *harness.Bundle) { b.Spec.Root.Path = "no-such-rootfs" }, want: "root.path"},
		{name: "rootfs is a file", setup: func(b *harness.Bundle) {
			os.WriteFile(filepath.Join(b.Dir, "file"), nil, 0o644)
			b.Spec.Root.Path = "file"
		}, want: "not a directory"},
		{name: "unknown namespace", setup: func(b *harness.Bundle) {
			b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, want: `linux.namespaces[6]: unknown type "bogus"`},
		{name: "namespace path missing", setup: func(b *harness.Bundle) {
			b.Spec.Linux.Namespaces[1].Path = "/proc/999999999/ns/net"
		}, want: "/proc/999999999/ns/net"},
		{name: "unsupported version", setup: func(b *harness.Bundle) { b.Spec.Version = "2.0.0" }, want: `ociVersion "2.0.0"`},
		{name: "garbage version", setup: func(b *harness.Bundle) { b.Spec.Version = "latest" }, want: `ociVersion "latest"`},
		{name: "binary not in rootfs", setup: func(b *harness.Bundle) { b.Spec.Process.Args = []string{"/usr/bin/nothere"} }, want: `process.args[0] "/usr/bin/nothere"`},
		{name: "binary not in PATH", setup: func(b *harness.Bundle) { b.Spec.Process.Args = []string{"nothere"} }, want: `process.args[0] "nothere"`},
		{name: "empty args", setup: func(b *harness.Bundle) { b.Spec.Process.Args = nil }, want: "process.args"},
		{name: "relative cwd", setup: func(b *harness.Bundle) { b.Spec.Process.Cwd = "tmp" }, want: "process.cwd"},
		{name: "unknown capability", setup: func(b *harness.Bundle) {
			b.Spec.Process.Capabilities.Bounding = append(b.Spec.Process.Capabilities.Bounding, "CAP_BOGUS")
		}, want: `process.capabilities.bounding: unknown capability "CAP_BOGUS"`},
		{name: "unknown rlimit", setup: func(b *harness.Bundle) {
			b.Spec.Process.Rlimits = append(b.Spec.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_BOGUS"})
		}, want: `process.rlimits: unknown type "RLIMIT_BOGUS"`},
		{name: "hostname without uts", setup: func(b *harness.Bundle) {
			b.Spec.Linux.Namespaces = withoutNS(b.Spec.Linux.Namespaces, specs.UTSNamespace)
		}, want: "hostname needs a uts namespace"},
		{name: "bind source missing", setup: func(b *harness.Bundle) {
			b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: "/no/such/source", Options: []string{"bind"}})
		}, want: "mounts[7] (bind on /data)"},
		{name: "bad mount type", setup: func(b *harness.Bundle) {
			b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/x", Type: "nosuchfs", Source: "none"})
		}, want: "mounts[7] (nosuchfs on /x)"},
		{name: "negative memory limit", setup: func(b *harness.Bundle) {
			b.Spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: ptr(int64(-5))}
		}, want: "linux.resources.memory.limit"},
		{name: "cpuset outside the machine", setup: func(b *harness.Bundle) {
			b.Spec.Linux.Resources.CPU = &specs.LinuxCPU{Cpus: "4095"}
		}, want: "linux.resources.cpu.cpus"},
		{name: "bad device rule type", setup: func(b *harness.Bundle) {
			b.Spec.Linux.Resources.Devices = append(b.Spec.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Type: "z", Access: "r"})
		}, want: "linux.resources.devices"},
		{name: "seccomp unknown action", setup: func(b *harness.Bundle) {
			b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: "SCMP_ACT_BOGUS"}}}
		}, want: `linux.seccomp.syscalls[0].action: unknown action "SCMP_ACT_BOGUS"`},
		{name: "seccomp notify without listener", setup: func(b *harness.Bundle) {
			b.Spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}
		}, want: "listenerPath"},
		{name: "process created without process then started", raw: true, setup: func(b *harness.Bundle) {
			b.Spec.Process = nil
			b.Write()
		}, want: "no process to start"},
		{name: "failing prestart hook", setup: func(b *harness.Bundle) {
			//lint:ignore SA1019 the runtime still honours prestart
			b.Spec.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo hook says no >&2; exit 3"}}}}
		}, want: "hooks.prestart[0] /bin/sh: exit status 3: hook says no"},
		{name: "failing createRuntime hook", setup: func(b *harness.Bundle) {
			b.Spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/false"}}}
		}, want: "hooks.createRuntime[0] /bin/false"},
		{name: "failing createContainer hook", setup: func(b *harness.Bundle) {
			b.Spec.Hooks = &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/no/such/hook"}}}
		}, want: "hooks.createContainer[0] /no/such/hook"},
		{name: "hook timeout", setup: func(b *harness.Bundle) {
			b.Spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "30"}, Timeout: ptr(1)}}}
		}, want: "timed out after 1s"},
		{name: "bad id characters", id: "../escape", want: `container id "../escape"`},
		{name: "id with slash", id: "a/b", want: `container id "a/b"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := harness.NewBundle(t)
			if tc.setup != nil {
				tc.setup(b)
			}
			if !tc.raw {
				b.Write()
			}
			id := b.ID
			if tc.id != "" {
				id = tc.id
			}
			r := b.Runtime("create", id)
			if r.Code == 0 && b.Spec.Process == nil {
				// A config without a process creates, but cannot start.
				r = b.Runtime("start", id)
				b.MustRuntime("delete", id)
			}
			if r.Code == 0 {
				t.Fatalf("create succeeded: %s", r)
			}
			lines := strings.Split(strings.TrimSpace(r.Stderr), "\n")
			if len(lines) != 1 {
				t.Errorf("want one error line, got %d:\n%s", len(lines), r.Stderr)
			}
			if !strings.Contains(r.Messages(), tc.want) {
				t.Errorf("error %q does not name %q", strings.TrimSpace(r.Messages()), tc.want)
			}
			b.AssertNothingLeft()
			if ents, _ := os.ReadDir(b.Root); len(ents) > 0 {
				t.Errorf("state root not empty: %v", ents)
			}
		})
	}
}

func TestIDInUse(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Process.Args = []string{"sleep", "60"}
	b.Write()
	b.MustRuntime("create", b.ID)
	pid := b.State().Pid
	r := b.Runtime("create", b.ID)
	if r.Code == 0 || !strings.Contains(r.Stderr, "already in use") {
		t.Errorf("second create with the same id: %s", r)
	}
	if st := b.State(); st.Pid != pid || st.Status != specs.StateCreated {
		t.Errorf("the first container was disturbed: %+v", st)
	}
	b.MustRuntime("delete", b.ID)
	b.AssertNothingLeft()
}

func TestUnknownContainer(t *testing.T) {
	b := harness.NewBundle(t)
	for _, args := range [][]string{{"state", "nope"}, {"start", "nope"}, {"kill", "nope"}, {"delete", "nope"}, {"exec", "nope", "true"}, {"ps", "nope"}} {
		if r := b.Runtime(args...); r.Code == 0 || !strings.Contains(r.Messages(), `container "nope" does not exist`) {
			t.Errorf("%v: %s", args, r)
		}
	}
}

func TestLogJSON(t *testing.T) {
	b := harness.NewBundle(t)
	b.Spec.Version = "9.9.9"
	b.Write()
	log := filepath.Join(b.Dir, "runtime.log")
	r := b.Runtime("--log", log, "--log-format", "json", "create", b.ID)
	if r.Code == 0 {
		t.Fatal("create succeeded")
	}
	data, _ := os.ReadFile(log)
	if !strings.Contains(string(data), `"level":"error"`) || !strings.Contains(string(data), `ociVersion \"9.9.9\"`) {
		t.Errorf("json log %q", data)
	}
	if r := b.Runtime("--log-format", "xml", "list"); r.Code == 0 {
		t.Errorf("--log-format xml accepted")
	}
}

func withoutNS(nss []specs.LinuxNamespace, t specs.LinuxNamespaceType) []specs.LinuxNamespace {
	var out []specs.LinuxNamespace
	for _, ns := range nss {
		if ns.Type != t {
			out = append(out, ns)
		}
	}
	return out
}
