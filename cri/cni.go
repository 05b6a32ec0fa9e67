package cri

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CNI puts pods on the network with CNI plugins, as the kubelet expects of
// a runtime: the first configuration (by file name) of ConfDir, run with
// the plugins of BinDirs, results cached under CacheDir (for the DEL of a
// pod after a restart of berthd).
type CNI struct {
	ConfDir  string
	BinDirs  []string
	CacheDir string
}

// network loads the configuration list the pods are put on.
func (c *CNI) network() (*libcni.NetworkConfigList, error) {
	files, err := libcni.ConfFiles(c.ConfDir, []string{".conf", ".conflist", ".json"})
	if err != nil {
		return nil, fmt.Errorf("CNI configuration directory %s: %w", c.ConfDir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no CNI network configuration in %s", c.ConfDir)
	}
	list, err := libcni.NetworkConfFromFile(files[0])
	if err != nil {
		return nil, fmt.Errorf("CNI configuration %s: %w", files[0], err)
	}
	return list, nil
}

// Ready reports why pods cannot be put on the network, or nil.
func (c *CNI) Ready() error {
	if c == nil {
		return errors.New("berthd was started without a CNI configuration directory")
	}
	_, err := c.network()
	return err
}

func (c *CNI) runtimeConf(id, netns string, meta *runtimeapi.PodSandboxMetadata, ports []*runtimeapi.PortMapping) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{ContainerID: id, NetNS: netns, IfName: "eth0",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", meta.GetNamespace()},
			{"K8S_POD_NAME", meta.GetName()}, {"K8S_POD_INFRA_CONTAINER_ID", id}, {"K8S_POD_UID", meta.GetUid()}}}
	var pm []map[string]any
	for _, p := range ports {
		if p.HostPort <= 0 {
			continue
		}
		pm = append(pm, map[string]any{"hostPort": p.HostPort, "containerPort": p.ContainerPort,
			"protocol": strings.ToLower(p.Protocol.String()), "hostIP": p.HostIp})
	}
	rt.CapabilityArgs = map[string]any{"portMappings": pm}
	return rt
}

func (c *CNI) conf() *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir(c.BinDirs, c.CacheDir, nil)
}

// Add puts the pod's network namespace netns on the network list (as
// network loaded it) and returns its addresses, IPv4 first.
func (c *CNI) Add(ctx context.Context, list *libcni.NetworkConfigList, id, netns string, meta *runtimeapi.PodSandboxMetadata, ports []*runtimeapi.PortMapping) ([]string, error) {
	res, err := c.conf().AddNetworkList(ctx, list, c.runtimeConf(id, netns, meta, ports))
	if err != nil {
		return nil, fmt.Errorf("CNI network %q: %w", list.Name, err)
	}
	r, err := current.NewResultFromResult(res)
	if err != nil {
		return nil, err
	}
	// IPv4 first, as the kubelet takes the first as the pod's address.
	var v4, v6 []string
	for _, ip := range r.IPs {
		if ip.Address.IP.To4() != nil {
			v4 = append(v4, ip.Address.IP.String())
		} else {
			v6 = append(v6, ip.Address.IP.String())
		}
	}
	return append(v4, v6...), nil
}

// Del takes the pod off the network (netns may be "" when the namespace
// is gone: the plugins then release what they hold, addresses and rules).
func (c *CNI) Del(ctx context.Context, id, netns string, meta *runtimeapi.PodSandboxMetadata, ports []*runtimeapi.PortMapping) error {
	list, err := c.network()
	if err != nil {
		return err
	}
	return c.conf().DelNetworkList(ctx, list, c.runtimeConf(id, netns, meta, ports))
}
