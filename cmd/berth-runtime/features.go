package main

import (
	"encoding/json"
	"os"
	"sort"

	"github.com/berth-project/berth/container/capabilities"
	"github.com/berth-project/berth/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

func featuresCmd() *command {
	return &command{
		use:   "features",
		short: "Print what this runtime supports, as runtime-spec features.json",
		args:  noArgs,
		run: func(cmd *command, args []string) error {
			t, f := true, false
			mountOpts := []string{
				"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "idmap", "loud", "mand",
				"noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime", "nosuid",
				"private", "rbind", "rdev", "rdiratime", "relatime", "remount", "rexec", "rnoatime",
				"ridmap", "rnodev", "rnodiratime", "rnoexec", "rnosuid", "rnosymfollow", "ro", "rprivate", "rrelatime",
				"rro", "rrw", "rshared", "rslave", "rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw",
				"shared", "silent", "slave", "strictatime", "suid", "sync", "unbindable",
			}
			sort.Strings(mountOpts)
			out := features.Features{
				OCIVersionMin: "1.0.0",
				OCIVersionMax: specs.Version,
				Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
				MountOptions:  mountOpts,
				Linux: &features.Linux{
					Namespaces:   []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"},
					Capabilities: capabilities.Names(),
					Cgroup:       &features.Cgroup{V1: &t, V2: &t, Systemd: &t, SystemdUser: &f, Rdma: &f},
					Seccomp: &features.Seccomp{
						Enabled: &t, Actions: sorted(seccomp.Actions()), Operators: sorted(seccomp.Operators()),
						Archs: seccomp.Archs(), KnownFlags: seccomp.Flags(), SupportedFlags: seccomp.Flags(),
					},
					Apparmor: &features.Apparmor{Enabled: &f},
					Selinux:  &features.Selinux{Enabled: &f},
					IntelRdt: &features.IntelRdt{Enabled: &f},
					MountExtensions: &features.MountExtensions{
						IDMap: &features.IDMap{Enabled: &t},
					},
				},
				Annotations: map[string]string{"org.opencontainers.runtime-spec.features.berth.version": version},
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "    ")
			return enc.Encode(out)
		},
	}
}

func sorted(s []string) []string {
	sort.Strings(s)
	return s
}
