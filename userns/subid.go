// Package userns gives containers user namespaces on a host: the
// subordinate id ranges a user owns (/etc/subuid, /etc/subgid), their
// division into one disjoint block per container, a user namespace file
// descriptor for a mapping, and idmapped mounts made with it.
package userns

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/berth-project/berth/errdefs"
)

// Range is Size consecutive host ids from Start.
type Range struct {
	Start uint32 `json:"start"`
	Size  uint32 `json:"size"`
}

// End is one past the last id of r.
func (r Range) End() uint64 { return uint64(r.Start) + uint64(r.Size) }

// Contains says whether id is in r.
func (r Range) Contains(id uint32) bool { return id >= r.Start && uint64(id) < r.End() }

// ReadSubIDs returns the ranges path (subuid(5) format) grants the user
// named name, whose numeric id is id: lines "name:start:count" or
// "id:start:count". A missing file grants nothing.
func ReadSubIDs(path, name string, id int) ([]Range, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Range
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		who, rest, ok := strings.Cut(line, ":")
		if !ok || who != name && who != strconv.Itoa(id) {
			continue
		}
		startS, countS, ok := strings.Cut(rest, ":")
		start, err1 := strconv.ParseUint(startS, 10, 32)
		count, err2 := strconv.ParseUint(countS, 10, 32)
		if !ok || err1 != nil || err2 != nil || count == 0 || start+count > 1<<32 {
			return nil, fmt.Errorf("%s line %d: %q is not name:start:count: %w", path, n, line, errdefs.ErrInvalid)
		}
		out = append(out, Range{Start: uint32(start), Size: uint32(count)})
	}
	return out, sc.Err()
}

// Nested says whether this process runs in a user namespace other than
// the host's (its uid_map is not the identity of every id): there it may
// be root, yet not over host resources such as cgroups and devices.
func Nested() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return !(len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295")
}
