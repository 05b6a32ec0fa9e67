package engine

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
)

// The pure parts of the engine, each as dockerd behaves (the differential
// suite, test/dockerparity, checks the same against dockerd itself).

func TestTmpfsOptionsMergeAsDockerd(t *testing.T) {
	for _, c := range []struct {
		user []string
		want []string
	}{
		{nil, []string{"noexec", "nosuid", "nodev"}},
		{[]string{"size=64m"}, []string{"noexec", "nosuid", "nodev", "size=64m"}},
		{[]string{"exec", "mode=1700"}, []string{"nosuid", "nodev", "exec", "mode=1700"}},
		{[]string{"size=1m", "size=2m"}, []string{"noexec", "nosuid", "nodev", "size=2m"}},
		{[]string{"suid", "dev", "ro"}, []string{"noexec", "suid", "dev", "ro"}},
	} {
		if got := tmpfsOptions(c.user); !slices.Equal(got, c.want) {
			t.Errorf("tmpfsOptions(%q) = %q, want %q", c.user, got, c.want)
		}
	}
}

// A docker-format profile (names, name, archMap) is the OCI profile the
// runtime loads.
func TestSeccompProfileContent(t *testing.T) {
	o, err := parseSecurityOpts([]string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]}],` +
		`"syscalls":[{"name":"sethostname","action":"SCMP_ACT_ERRNO","errnoRet":1},{"names":["chmod","fchmod"],"action":"SCMP_ACT_ERRNO"}]}`})
	if err != nil {
		t.Fatal(err)
	}
	p := o.seccomp
	if p == nil || p.DefaultAction != "SCMP_ACT_ALLOW" || len(p.Architectures) != 2 || len(p.Syscalls) != 2 ||
		p.Syscalls[0].Names[0] != "sethostname" || *p.Syscalls[0].ErrnoRet != 1 || len(p.Syscalls[1].Names) != 2 {
		t.Errorf("profile: %+v", p)
	}
}

func TestSecurityOptForms(t *testing.T) {
	for _, c := range []struct {
		opts []string
		want securityOpts
		err  string
	}{
		{[]string{"seccomp=unconfined"}, securityOpts{unconfinedSeccomp: true}, ""},
		{[]string{"seccomp:unconfined"}, securityOpts{unconfinedSeccomp: true}, ""},
		{[]string{"seccomp=builtin"}, securityOpts{}, ""},
		{[]string{"no-new-privileges"}, securityOpts{noNewPrivs: true}, ""},
		{[]string{"no-new-privileges:true"}, securityOpts{noNewPrivs: true}, ""},
		{[]string{"no-new-privileges=false"}, securityOpts{}, ""},
		{[]string{"apparmor=unconfined", "label=disable"}, securityOpts{apparmor: "unconfined"}, ""},
		{[]string{"systempaths=unconfined"}, securityOpts{unconfinedPaths: true}, ""},
		// The docker CLI sends a profile's content; a path reaches berthd
		// only from a client that did not read it.
		{[]string{"seccomp=/some/profile.json"}, securityOpts{}, "seccomp profile: not a seccomp profile"},
		{[]string{`seccomp={"defaultAction":"SCMP_ACT_NOPE"}`}, securityOpts{}, "defaultAction"},
		{[]string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"sethostname","action":"SCMP_ACT_ERRNO","includes":{"caps":["CAP_SYS_ADMIN"]}}]}`}, securityOpts{}, "includes or excludes"},
		{[]string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod"],"action":"SCMP_ACT_ERRNO","includes":{},"excludes":null}]}`}, securityOpts{}, ""},
		{[]string{"bogus=1"}, securityOpts{}, `invalid --security-opt 2: "bogus=1"`},
		{[]string{"no-new-privileges=maybe"}, securityOpts{}, "invalid --security-opt 2"},
		{[]string{"nonsense"}, securityOpts{}, "invalid --security-opt 1"},
	} {
		got, err := parseSecurityOpts(c.opts)
		got.seccomp = nil
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want one with %q", c.opts, err, c.err)
		case c.err == "" && (err != nil || got != c.want):
			t.Errorf("%q: %+v, %v; want %+v", c.opts, got, err, c.want)
		}
	}
}

func TestProcessEnvAsDockerd(t *testing.T) {
	env := processEnv(&ctypes.Config{Hostname: "h1", Tty: true, Env: []string{"PATH=/bin", "A=1", "HOSTNAME=mine"}})
	want := []string{"PATH=/bin", "HOSTNAME=mine", "TERM=xterm", "A=1"}
	if !slices.Equal(env, want) {
		t.Errorf("env %q, want %q", env, want)
	}
}

func TestResolvUserGroups(t *testing.T) {
	root := t.TempDir()
	writeRootFile(t, root, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000::/home/u:/bin/sh\n")
	writeRootFile(t, root, "etc/group", "root:x:0:\nwheel:x:10:u\nusers:x:1000:\n")
	for _, c := range []struct {
		spec     string
		add      []string
		uid, gid uint32
		groups   []uint32
	}{
		{"", nil, 0, 0, []uint32{0}},                  // no group of its own: its primary one
		{"u", nil, 1000, 1000, []uint32{10}},          // a member of wheel
		{"1234:55", nil, 1234, 55, []uint32{55}},      // unknown uid
		{"root", []string{"7"}, 0, 0, []uint32{0, 7}}, // --group-add
	} {
		u, err := resolveUser(root, c.spec, c.add)
		if err != nil || u.UID != c.uid || u.GID != c.gid || !slices.Equal(u.AdditionalGids, c.groups) {
			t.Errorf("%q %q: %+v %v", c.spec, c.add, u, err)
		}
	}
	if _, err := resolveUser(root, "nobody", nil); err == nil || !strings.Contains(err.Error(), "unable to find user nobody") {
		t.Errorf("unknown user: %v", err)
	}
}

func TestValidateHostConfigAsDockerd(t *testing.T) {
	for _, c := range []struct {
		hc   ctypes.HostConfig
		want string
	}{
		{ctypes.HostConfig{Resources: ctypes.Resources{Memory: 1 << 20}}, "Minimum memory limit allowed is 6MB"},
		{ctypes.HostConfig{Resources: ctypes.Resources{NanoCPUs: 1 << 50}}, "Range of CPUs is from 0.01 to"},
		{ctypes.HostConfig{Resources: ctypes.Resources{NanoCPUs: 1e9, CPUQuota: 1000}}, "Conflicting options"},
		{ctypes.HostConfig{Resources: ctypes.Resources{Devices: []ctypes.DeviceMapping{{PathOnHost: "/dev/nope"}}}}, `adding custom device "/dev/nope"`},
		{ctypes.HostConfig{RestartPolicy: ctypes.RestartPolicy{Name: "sometimes"}}, "unknown policy 'sometimes'"},
		{ctypes.HostConfig{AutoRemove: true, RestartPolicy: ctypes.RestartPolicy{Name: "always"}}, "can't create 'AutoRemove' container with restart policy"},
		{ctypes.HostConfig{Resources: ctypes.Resources{CPURealtimeRuntime: 1}}, "real-time"},
		{ctypes.HostConfig{SecurityOpt: []string{"apparmor=myprofile"}}, ""},
	} {
		warnings, err := validateHostConfig(&c.hc)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v: %v", c.hc, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("want %q, got %v", c.want, err)
		}
		if len(c.hc.SecurityOpt) > 0 && (len(warnings) != 1 || !strings.Contains(warnings[0], "no AppArmor")) {
			t.Errorf("a named AppArmor profile: warnings %q", warnings)
		}
	}
}

func TestRestartDecisionAsDockerd(t *testing.T) {
	e := &Engine{}
	at := time.Now()
	mk := func(policy string, max, exit, restarts int, ran time.Duration) *ctr {
		return &ctr{rec: Record{HostConfig: &ctypes.HostConfig{RestartPolicy: ctypes.RestartPolicy{Name: ctypes.RestartPolicyMode(policy), MaximumRetryCount: max}},
			RestartCount: restarts, State: State{ExitCode: exit, StartedAt: at, FinishedAt: at.Add(ran)}}}
	}
	for _, c := range []struct {
		c       *ctr
		restart bool
		delay   time.Duration
	}{
		{mk("no", 0, 1, 0, 0), false, 0},
		{mk("always", 0, 0, 0, time.Second), true, 100 * time.Millisecond},
		{mk("always", 0, 0, 3, time.Second), true, 800 * time.Millisecond}, // doubling
		{mk("always", 0, 0, 3, time.Minute), true, 100 * time.Millisecond}, // a long run resets it
		{mk("always", 0, 0, 20, time.Second), true, time.Minute},           // at most a minute
		{mk("on-failure", 0, 0, 0, 0), false, 0},
		{mk("on-failure", 2, 1, 1, 0), true, 200 * time.Millisecond},
		{mk("on-failure", 2, 1, 2, 0), false, 0}, // retries used up
	} {
		restart, delay := e.restartDecision(c.c)
		if restart != c.restart || delay != c.delay {
			t.Errorf("%s max %d exit %d after %d restarts: %v %v, want %v %v", c.c.rec.HostConfig.RestartPolicy.Name,
				c.c.rec.HostConfig.RestartPolicy.MaximumRetryCount, c.c.rec.State.ExitCode, c.c.rec.RestartCount, restart, delay, c.restart, c.delay)
		}
	}
	stopped := mk("always", 0, 0, 0, 0)
	stopped.rec.ManualStop = true
	if restart, _ := e.restartDecision(stopped); restart {
		t.Error("a container stopped by hand is restarted")
	}
}

func TestLookupNeverNil(t *testing.T) {
	e := &Engine{ctrs: map[string]*ctr{}, names: map[string]string{}}
	id := strings.Repeat("ab", 32)
	e.ctrs[id] = &ctr{rec: Record{ID: id, Name: "/web"}}
	e.names["/web"] = id
	e.names["/being-made"] = strings.Repeat("cd", 32) // a create in progress
	for ref, want := range map[string]bool{"web": true, "/web": true, id[:6]: true, id: true, "being-made": false, "nope": false} {
		c, err := e.lookup(ref)
		if c == nil && err == nil {
			t.Errorf("lookup(%q): nil container without an error", ref)
		}
		if (c != nil) != want {
			t.Errorf("lookup(%q) = %v, %v", ref, c, err)
		}
	}
}

func TestNameFilterIsARegexp(t *testing.T) {
	for _, c := range []struct {
		name, pattern string
		want          bool
	}{
		{"/web1", "^web", true}, {"/myweb", "^web", false}, {"/myweb", "web", true},
		{"/myweb", "^/myweb$", true}, {"/web", "[", false},
	} {
		if got := nameMatches(c.name, c.pattern); got != c.want {
			t.Errorf("nameMatches(%q, %q) = %v", c.name, c.pattern, got)
		}
	}
}

func TestPsCommandQuotes(t *testing.T) {
	if got := psCommand("sh", []string{"-c", "echo hi"}); got != "sh -c 'echo hi'" {
		t.Errorf("psCommand: %q", got)
	}
}

func TestHealthConfigMergeAndDefaults(t *testing.T) {
	img := &ctypes.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: 5}
	got := mergeHealth(&ctypes.HealthConfig{Timeout: 2 * time.Second}, img)
	if !slices.Equal(got.Test, img.Test) || got.Interval != time.Second || got.Timeout != 2*time.Second || got.Retries != 5 {
		t.Errorf("merge: %+v", got)
	}
	p := probeOf(&ctypes.HealthConfig{Test: []string{"CMD-SHELL", "exit 0"}})
	if p == nil || !slices.Equal(p.cmd, []string{"/bin/sh", "-c", "exit 0"}) || p.interval != 30*time.Second || p.retries != 3 {
		t.Errorf("defaults: %+v", p)
	}
	if probeOf(&ctypes.HealthConfig{Test: []string{"NONE"}}) != nil {
		t.Error("NONE has a probe")
	}
	if err := checkHealthConfig(&ctypes.HealthConfig{Interval: time.Microsecond}); err == nil || !strings.Contains(err.Error(), "Interval in Healthcheck cannot be less than 1ms") {
		t.Errorf("1µs interval: %v", err)
	}
}

func writeRootFile(t *testing.T, root, rel, body string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}
