// Package report defines what the checker binary prints from inside a
// container, shared by the checker and the tests that read it.
package report

// Report is one checker run's view of its own process.
type Report struct {
	Pid, Ppid            int
	UID, GID, EUID, EGID int
	Groups               []int
	Hostname, Domainname string
	Cwd                  string
	Env                  []string
	Umask                int
	NoNewPrivs           int
	Caps                 map[string]string    // CapInh, CapPrm, CapEff, CapBnd, CapAmb (hex)
	Rlimits              map[string][2]uint64 // NOFILE etc. → soft, hard
	Namespaces           map[string]string    // ns name → "net:[4026…]"
	UIDMap, GIDMap       string
	OOMScoreAdj          string
	Fds                  []int             // open descriptors
	Mounts               map[string]string // mount point → per-mount options
	Cgroup               string            // /proc/self/cgroup
	Args                 []string
}
