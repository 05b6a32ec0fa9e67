package seccomp

import (
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// dockerProfile is a seccomp profile file as docker and Kubernetes
// (Localhost profiles) write them: the OCI fields, a syscall rule naming
// one syscall ("name") or several ("names"), and the architectures given
// directly or by archMap.
type dockerProfile struct {
	specs.LinuxSeccomp
	ArchMap []struct {
		Arch    specs.Arch   `json:"architecture"`
		SubArch []specs.Arch `json:"subArchitectures"`
	} `json:"archMap"`
	Syscalls []struct {
		specs.LinuxSyscall
		Name string `json:"name"`
		// Includes and Excludes are conditions (caps, arches, minKernel);
		// absent, null or {} is none.
		Includes map[string]json.RawMessage `json:"includes"`
		Excludes map[string]json.RawMessage `json:"excludes"`
	} `json:"syscalls"`
}

// ParseProfile reads a docker-format profile and checks it as the runtime
// will (actions, architectures, syscall names). Rules with includes or
// excludes (the conditions of docker's own default profile) are refused,
// naming the syscall: berth does not evaluate them.
func ParseProfile(raw []byte) (*specs.LinuxSeccomp, error) {
	var p dockerProfile
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("not a seccomp profile: %w", err)
	}
	out := p.LinuxSeccomp
	out.Syscalls = nil
	if len(out.Architectures) == 0 {
		for _, a := range p.ArchMap {
			out.Architectures = append(out.Architectures, a.Arch)
			out.Architectures = append(out.Architectures, a.SubArch...)
		}
	}
	for _, sc := range p.Syscalls {
		r := sc.LinuxSyscall
		if sc.Name != "" {
			r.Names = append([]string{sc.Name}, r.Names...)
		}
		if len(sc.Includes) > 0 || len(sc.Excludes) > 0 {
			return nil, fmt.Errorf("the rule for %v has includes or excludes, which berth does not evaluate", r.Names)
		}
		out.Syscalls = append(out.Syscalls, r)
	}
	if out.DefaultAction == "" {
		return nil, fmt.Errorf("no defaultAction")
	}
	if err := Validate(&out); err != nil {
		return nil, err
	}
	return &out, nil
}
