package engine

import (
	"slices"
	"testing"

	"github.com/berth-project/berth/container"
	berthnet "github.com/berth-project/berth/network"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The spec options one by one, each on Berth's default spec.

func specFor(hc *ctypes.HostConfig) (*specInput, *specs.Spec) {
	r := &Record{ID: "abc", Path: "/bin/sh", Args: []string{"-c", "true"}, Config: &ctypes.Config{}, HostConfig: hc}
	return &specInput{rec: r, root: "/rootfs", etc: files{resolv: "/r", hostname: "/h", hosts: "/hs"}}, container.DefaultSpec(false)
}

func namespaces(s *specs.Spec) map[specs.LinuxNamespaceType]string {
	out := map[specs.LinuxNamespaceType]string{}
	for _, n := range s.Linux.Namespaces {
		out[n.Type] = n.Path
	}
	return out
}

func TestWithNamespacesModes(t *testing.T) {
	in, s := specFor(&ctypes.HostConfig{NetworkMode: "host", PidMode: "host", UTSMode: "host"})
	s.Hostname = "h"
	withNamespaces(in, s)
	ns := namespaces(s)
	for _, gone := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.PIDNamespace, specs.UTSNamespace} {
		if _, ok := ns[gone]; ok {
			t.Errorf("%s namespace kept in host mode", gone)
		}
	}
	if _, ok := ns[specs.IPCNamespace]; !ok || s.Hostname != "" {
		t.Errorf("ipc namespace %v, hostname %q: want the ipc namespace and no hostname with uts=host", ok, s.Hostname)
	}

	in, s = specFor(&ctypes.HostConfig{NetworkMode: "container:other"})
	in.netns = "/proc/42/ns/net"
	withNamespaces(in, s)
	if got := namespaces(s)[specs.NetworkNamespace]; got != "/proc/42/ns/net" {
		t.Errorf("network namespace path %q, want the other container's", got)
	}

	in, s = specFor(&ctypes.HostConfig{NetworkMode: "bridge"})
	in.sb = &berthnet.Sandbox{Netns: "/run/netns/x"}
	withNamespaces(in, s)
	if got := namespaces(s)[specs.NetworkNamespace]; got != "/run/netns/x" {
		t.Errorf("network namespace path %q, want the sandbox's", got)
	}
}

func TestWithMountsOrderAndOptions(t *testing.T) {
	in, s := specFor(&ctypes.HostConfig{
		ReadonlyRootfs: true,
		ShmSize:        1 << 20,
		Binds:          []string{"/host/data:/data/sub:ro", "named:/data"},
		Mounts:         []mount.Mount{{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 4096, Mode: 0o700}}},
		Tmpfs:          map[string]string{"/run": "size=1m"},
	})
	in.volumes = []specs.Mount{{Destination: "/data", Type: "bind", Source: "/vol/named"}}
	if err := withMounts(in, s); err != nil {
		t.Fatal(err)
	}
	var dests []string
	byDest := map[string]specs.Mount{}
	for _, m := range s.Mounts {
		dests = append(dests, m.Destination)
		byDest[m.Destination] = m
	}
	// The volume on /data comes before the bind inside it.
	if i, j := slices.Index(dests, "/data"), slices.Index(dests, "/data/sub"); i < 0 || j < 0 || i > j {
		t.Errorf("mount order %v: /data must come before /data/sub", dests)
	}
	if !slices.Contains(byDest["/dev/shm"].Options, "size=1048576") {
		t.Errorf("/dev/shm options %v, want size=1048576", byDest["/dev/shm"].Options)
	}
	if !slices.Contains(byDest["/etc/hosts"].Options, "ro") || !slices.Contains(byDest["/data/sub"].Options, "ro") {
		t.Errorf("read-only root: /etc files %v, ro bind %v: want ro", byDest["/etc/hosts"].Options, byDest["/data/sub"].Options)
	}
	if o := byDest["/t"].Options; !slices.Contains(o, "size=4096") || !slices.Contains(o, "mode=700") || !slices.Contains(o, "noexec") {
		t.Errorf("tmpfs mount options %v", o)
	}
	if byDest["/run"].Type != "tmpfs" {
		t.Errorf("--tmpfs /run: %+v", byDest["/run"])
	}
}

func TestWithSecurityPrivilegedAndOpts(t *testing.T) {
	in, s := specFor(&ctypes.HostConfig{})
	if err := withSecurity(in, s); err != nil {
		t.Fatal(err)
	}
	if s.Linux.Seccomp == nil || len(s.Linux.MaskedPaths) == 0 || s.Process.NoNewPrivileges {
		t.Errorf("default: seccomp %v, masked %v, no_new_privs %v: want a profile, masked paths, no no_new_privs",
			s.Linux.Seccomp != nil, s.Linux.MaskedPaths, s.Process.NoNewPrivileges)
	}
	in, s = specFor(&ctypes.HostConfig{Privileged: true})
	withSecurity(in, s)
	if s.Linux.Seccomp != nil || s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Error("privileged: seccomp or masked/read-only paths kept")
	}
	in, s = specFor(&ctypes.HostConfig{SecurityOpt: []string{"no-new-privileges", "seccomp=unconfined"}})
	withSecurity(in, s)
	if s.Linux.Seccomp != nil || !s.Process.NoNewPrivileges {
		t.Errorf("security opts: seccomp %v, no_new_privs %v", s.Linux.Seccomp != nil, s.Process.NoNewPrivileges)
	}
	in, s = specFor(&ctypes.HostConfig{SecurityOpt: []string{"seccomp=/some/profile.json"}})
	if err := withSecurity(in, s); err == nil {
		t.Error("a custom seccomp profile accepted")
	}
}

func TestWithProcessInitAndDefaults(t *testing.T) {
	in, s := specFor(&ctypes.HostConfig{Resources: ctypes.Resources{Ulimits: []*ctypes.Ulimit{{Name: "nofile", Soft: 10, Hard: 20}}}, OomScoreAdj: 5})
	in.initPath = "/usr/libexec/berth-init"
	withProcess(in, s)
	if !slices.Equal(s.Process.Args, []string{InitPath, "--", "/bin/sh", "-c", "true"}) {
		t.Errorf("args %q", s.Process.Args)
	}
	if s.Process.Cwd != "/" || s.Root.Path != "/rootfs" {
		t.Errorf("cwd %q root %q", s.Process.Cwd, s.Root.Path)
	}
	if len(s.Process.Rlimits) != 1 || s.Process.Rlimits[0].Type != "RLIMIT_NOFILE" || s.Process.Rlimits[0].Hard != 20 {
		t.Errorf("rlimits %+v", s.Process.Rlimits)
	}
	if s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj != 5 {
		t.Errorf("oom score adj %v", s.Process.OOMScoreAdj)
	}
	found := false
	for _, m := range s.Mounts {
		found = found || m.Destination == InitPath && m.Source == in.initPath
	}
	if !found {
		t.Error("the init binary is not bound in")
	}
}

func TestWithCgroupParent(t *testing.T) {
	in, s := specFor(&ctypes.HostConfig{})
	withCgroup(in, s)
	if s.Linux.CgroupsPath != "/berth/abc" {
		t.Errorf("cgroups path %q", s.Linux.CgroupsPath)
	}
	in.cgroupParent = "/custom"
	withCgroup(in, s)
	if s.Linux.CgroupsPath != "/custom/abc" {
		t.Errorf("cgroups path %q with a parent", s.Linux.CgroupsPath)
	}
}
