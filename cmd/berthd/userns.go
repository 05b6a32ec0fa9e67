package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"

	"github.com/berth-project/berth/engine"
	"github.com/berth-project/berth/userns"
)

// defaultRemapUser is the user --userns-remap=default makes and takes the
// subordinate ids of; --userns=auto takes them too when it exists.
const defaultRemapUser = "berth"

// defaultBlocks is how many containers' ranges the made user gets.
const defaultBlocks = 1024

// usernsOptions reads the daemon's user namespace flags: --userns-remap
// (dockerd's: every container's root is a user of USER's subordinate ids)
// and --userns-auto (every container gets a range of its own), with the
// subordinate ids from --subuid-file and --subgid-file.
func usernsOptions(cfg config) (engine.UsernsOptions, error) {
	var o engine.UsernsOptions
	o.Layers = cfg.UsernsLayers
	if cfg.rootless {
		// Containers share the daemon's own user namespace.
		if cfg.UsernsRemap != "" || cfg.UsernsAuto {
			return o, fmt.Errorf("--userns-remap and --userns-auto are not available to a rootless berthd: its containers share its user namespace")
		}
		return o, nil
	}
	name, group := cfg.UsernsRemap, ""
	if n, g, ok := strings.Cut(name, ":"); ok {
		name, group = n, g
	}
	if name == "default" {
		if err := ensureDefaultUser(cfg.SubuidFile, cfg.SubgidFile); err != nil {
			return o, fmt.Errorf("--userns-remap=default: %w", err)
		}
		name = defaultRemapUser
	}
	if name == "" {
		if cfg.UsernsAuto {
			if err := ensureDefaultUser(cfg.SubuidFile, cfg.SubgidFile); err != nil {
				return o, fmt.Errorf("--userns-auto: %w", err)
			}
		}
		if _, err := user.Lookup(defaultRemapUser); err != nil {
			return o, nil // no subordinate ids: host mode only
		}
		name = defaultRemapUser
	}
	if group == "" {
		group = name
	}
	u, err := user.Lookup(name)
	if err != nil {
		return o, fmt.Errorf("--userns-remap: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	g, err := user.LookupGroup(group)
	if err != nil {
		return o, fmt.Errorf("--userns-remap: %w", err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	uids, err := userns.ReadSubIDs(cfg.SubuidFile, name, uid)
	if err != nil {
		return o, err
	}
	gids, err := userns.ReadSubIDs(cfg.SubgidFile, group, gid)
	if err != nil {
		return o, err
	}
	o.Source = fmt.Sprintf("the subordinate ids of %s (%s, %s)", name, cfg.SubuidFile, cfg.SubgidFile)
	o.Pool = userns.NewPool(uids, gids, o.Source)
	if cfg.UsernsRemap != "" {
		if o.Pool.Size() == 0 {
			return o, fmt.Errorf("--userns-remap=%s: %s grant no range of %d ids: add lines such as %s:100000:65536", cfg.UsernsRemap, o.Source, userns.BlockSize, name)
		}
		// The shared mapping is the first block, which auto never gets.
		m, _ := o.Pool.Alloc("(--userns-remap)")
		o.Remap, o.Default = &m, "remap"
	}
	if cfg.UsernsAuto {
		if o.Pool.Size() == 0 || o.Remap != nil && o.Pool.Size() == 1 {
			return o, fmt.Errorf("--userns-auto: %s leave no range of %d ids for containers", o.Source, userns.BlockSize)
		}
		o.Default = "auto"
	}
	return o, nil
}

// ensureDefaultUser makes the berth system user, as dockerd makes
// dockremap, and grants it defaultBlocks ranges of subordinate ids above
// every range the files already grant, unless it has some.
func ensureDefaultUser(subuid, subgid string) error {
	if _, err := user.Lookup(defaultRemapUser); err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", defaultRemapUser).CombinedOutput()
		if err != nil {
			return fmt.Errorf("making user %s: useradd: %v: %s", defaultRemapUser, err, strings.TrimSpace(string(out)))
		}
	}
	for _, file := range []string{subuid, subgid} {
		if err := grantIDs(file, defaultRemapUser); err != nil {
			return err
		}
	}
	return nil
}

// grantIDs appends "name:start:count" to a subordinate id file that grants
// name nothing, with start above every range it grants.
func grantIDs(file, name string) error {
	raw, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	top := uint64(100000)
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) != 3 {
			continue
		}
		if f[0] == name {
			return nil
		}
		s, err1 := strconv.ParseUint(f[1], 10, 32)
		n, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 == nil && err2 == nil && s+n > top {
			top = s + n
		}
	}
	count := uint64(defaultBlocks * userns.BlockSize)
	if top+count > 1<<32-1 {
		return fmt.Errorf("%s: no room for %d more subordinate ids", file, count)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	prefix := ""
	if len(raw) > 0 && !strings.HasSuffix(string(raw), "\n") {
		prefix = "\n"
	}
	_, err = fmt.Fprintf(f, "%s%s:%d:%d\n", prefix, name, top, count)
	return err
}
