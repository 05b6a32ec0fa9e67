package userns

import (
	"fmt"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-project/berth/errdefs"
)

// BlockSize is the ids each container's user namespace maps: 0 to 65535,
// what images assume (nobody is 65534).
const BlockSize = 65536

// Mapping is a container's user namespace: container ids 0..Size-1 are
// host ids UID.Start.. and GID.Start...
type Mapping struct {
	UID Range `json:"uid"`
	GID Range `json:"gid"`
}

// Spec is m as an OCI config's linux.uidMappings and gidMappings.
func (m Mapping) Spec() (uids, gids []specs.LinuxIDMapping) {
	return []specs.LinuxIDMapping{{ContainerID: 0, HostID: m.UID.Start, Size: m.UID.Size}},
		[]specs.LinuxIDMapping{{ContainerID: 0, HostID: m.GID.Start, Size: m.GID.Size}}
}

// RootUID and RootGID are the host ids of the container's root.
func (m Mapping) RootUID() int { return int(m.UID.Start) }
func (m Mapping) RootGID() int { return int(m.GID.Start) }

// ToHost maps container ids to host ids; ids outside the mapping map to
// the overflow id (65534), as the kernel shows them.
func (m Mapping) ToHost(uid, gid int) (int, int) {
	return shift(uid, m.UID), shift(gid, m.GID)
}

// ToContainer maps host ids to container ids.
func (m Mapping) ToContainer(uid, gid int) (int, int) {
	return unshift(uid, m.UID), unshift(gid, m.GID)
}

const overflowID = 65534

func shift(id int, r Range) int {
	if id < 0 || uint64(id) >= uint64(r.Size) {
		return overflowID
	}
	return int(r.Start) + id
}

func unshift(id int, r Range) int {
	if id < 0 || !r.Contains(uint32(id)) {
		return overflowID
	}
	return id - int(r.Start)
}

// Pool divides subordinate ranges into blocks of BlockSize ids and hands
// each owner (a container) a uid block and a gid block no other owner
// has. It holds no state of its own on disk: the owners' records do, and
// Reserve puts them back after a restart.
type Pool struct {
	mu         sync.Mutex
	uids, gids []uint32          // block starts, in the ranges' order
	owner      map[uint32]string // uid block start → owner
	gowner     map[uint32]string // gid block start → owner
	source     string            // for errors: where the ranges came from
}

// NewPool makes a pool of the whole blocks in uids and gids; source names
// them in errors ("the subordinate ids of user berth").
func NewPool(uids, gids []Range, source string) *Pool {
	return &Pool{uids: blocks(uids), gids: blocks(gids), owner: map[uint32]string{}, gowner: map[uint32]string{}, source: source}
}

func blocks(rs []Range) []uint32 {
	var out []uint32
	for _, r := range rs {
		for s := uint64(r.Start); s+BlockSize <= r.End(); s += BlockSize {
			out = append(out, uint32(s))
		}
	}
	return out
}

// Size is the number of owners the pool can hold at once.
func (p *Pool) Size() int { return min(len(p.uids), len(p.gids)) }

// Taken is the number of owners holding blocks.
func (p *Pool) Taken() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(len(p.owner), len(p.gowner))
}

// Alloc gives owner a free uid block and gid block. An exhausted pool is
// an ErrUnavailable error saying how many blocks there are.
func (p *Pool) Alloc(owner string) (Mapping, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u, okU := free(p.uids, p.owner)
	g, okG := free(p.gids, p.gowner)
	if !okU || !okG {
		return Mapping{}, fmt.Errorf("no free user namespace range: all %d ranges of %d ids in %s are taken by containers: %w",
			p.Size(), BlockSize, p.source, errdefs.ErrUnavailable)
	}
	p.owner[u], p.gowner[g] = owner, owner
	return Mapping{UID: Range{u, BlockSize}, GID: Range{g, BlockSize}}, nil
}

func free(starts []uint32, taken map[uint32]string) (uint32, bool) {
	for _, s := range starts {
		if _, t := taken[s]; !t {
			return s, true
		}
	}
	return 0, false
}

// Reserve marks m as owner's, as a record on disk says it is. A block
// another owner holds is an ErrConflict error; a mapping outside the pool
// (the ranges shrank since) is kept by the owner and only not handed out.
func (p *Pool) Reserve(owner string, m Mapping) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if o, t := p.owner[m.UID.Start]; t && o != owner {
		return fmt.Errorf("uid range %d-%d is recorded for both %s and %s: %w", m.UID.Start, m.UID.End()-1, o, owner, errdefs.ErrConflict)
	}
	if o, t := p.gowner[m.GID.Start]; t && o != owner {
		return fmt.Errorf("gid range %d-%d is recorded for both %s and %s: %w", m.GID.Start, m.GID.End()-1, o, owner, errdefs.ErrConflict)
	}
	p.owner[m.UID.Start], p.gowner[m.GID.Start] = owner, owner
	return nil
}

// Free returns owner's blocks to the pool.
func (p *Pool) Free(owner string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for s, o := range p.owner {
		if o == owner {
			delete(p.owner, s)
		}
	}
	for s, o := range p.gowner {
		if o == owner {
			delete(p.gowner, s)
		}
	}
}
