package network

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/berth-project/berth/errdefs"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Bandwidth limits a container's traffic, in bits per second (0: no
// limit). Egress is what the container sends, ingress what it receives.
type Bandwidth struct {
	Egress  uint64 `json:"egress,omitempty"`
	Ingress uint64 `json:"ingress,omitempty"`
}

// ParseBandwidth reads Berth's bandwidth option: "10mbit" limits both
// directions; "egress=10mbit,ingress=2mbit" each. Units: bit, kbit, mbit,
// gbit (powers of 1000, as tc's), or a bare number of bits per second.
func ParseBandwidth(s string) (Bandwidth, error) {
	var b Bandwidth
	bad := func() (Bandwidth, error) {
		return Bandwidth{}, errdefs.New(errdefs.ErrInvalid, fmt.Sprintf("invalid bandwidth %q: want a rate such as 10mbit, or egress=10mbit,ingress=2mbit", s))
	}
	if !strings.Contains(s, "=") {
		r, ok := parseRate(s)
		if !ok {
			return bad()
		}
		return Bandwidth{Egress: r, Ingress: r}, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(part, "=")
		r, ok := parseRate(v)
		if !ok {
			return bad()
		}
		switch strings.TrimSpace(k) {
		case "egress":
			b.Egress = r
		case "ingress":
			b.Ingress = r
		default:
			return bad()
		}
	}
	return b, nil
}

func parseRate(s string) (uint64, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := uint64(1)
	for _, u := range []struct {
		suffix string
		m      uint64
	}{{"gbit", 1e9}, {"mbit", 1e6}, {"kbit", 1e3}, {"bit", 1}} {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.m
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 {
		return 0, false
	}
	r := uint64(n * float64(mult))
	// Below 8 kbit/s a 1500-byte packet takes more than a second.
	return r, r >= 8000
}

// SetBandwidth limits, or with a zero Bandwidth unlimits, every
// interface of a running container's sandbox: a token bucket (tbf) on the
// host end of each veth shapes what the container receives, one on the
// container's end what it sends. It can be called again at any time.
func (m *Manager) SetBandwidth(containerID string, bw Bandwidth) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	sb, ok := m.st.Sandboxes[containerID]
	if !ok {
		return errdefs.New(errdefs.ErrConflict, fmt.Sprintf("container %s has no network of its own to limit", containerID))
	}
	_, h, done, err := handleIn(sb.Netns)
	if err != nil {
		return err
	}
	defer done()
	for _, ep := range sb.Endpoints {
		host, err := netlink.LinkByName(ep.HostVeth)
		if err != nil {
			return err
		}
		if err := shape(netlink.QdiscReplace, netlink.QdiscDel, host, bw.Ingress); err != nil {
			return fmt.Errorf("ingress limit on %s: %w", ep.HostVeth, err)
		}
		in, err := h.LinkByName(ep.IfName)
		if err != nil {
			return err
		}
		if err := shape(h.QdiscReplace, h.QdiscDel, in, bw.Egress); err != nil {
			return fmt.Errorf("egress limit on the container's %s: %w", ep.IfName, err)
		}
	}
	sb.Bandwidth = bw
	return m.save()
}

// shape puts a tbf qdisc of rate bits/s at the root of link, or removes
// it for 0. The bucket holds 10 ms at the rate, and at least three
// 1500-byte frames and two of the link's largest (tbf drops a frame that
// does not fit its bucket, and with LocalMTU a single TCP segment can be
// 64 KiB); the queue holds 50 ms more.
func shape(replace, del func(netlink.Qdisc) error, link netlink.Link, rate uint64) error {
	attrs := netlink.QdiscAttrs{LinkIndex: link.Attrs().Index, Handle: netlink.MakeHandle(1, 0), Parent: netlink.HANDLE_ROOT}
	if rate == 0 {
		err := del(&netlink.Tbf{QdiscAttrs: attrs})
		if err != nil && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EINVAL)) {
			return nil
		}
		return err
	}
	bytesPerSec := rate / 8
	burst := uint32(max(bytesPerSec/100, 3*1514, 2*(uint64(link.Attrs().MTU)+14)))
	return replace(&netlink.Tbf{
		QdiscAttrs: attrs,
		Rate:       bytesPerSec,
		Buffer:     netlink.Xmittime(bytesPerSec, burst),
		Limit:      burst + uint32(bytesPerSec/20),
	})
}
