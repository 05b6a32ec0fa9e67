package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"text/tabwriter"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func networkCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage networks"}
	var driver, subnet, gateway, ipRange string
	var internal bool
	var opts, labels []string
	create := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a bridge network",
		Args:  cobra.ExactArgs(1),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			o, err := keyValues("opt", opts)
			if err != nil {
				return err
			}
			l, err := keyValues("label", labels)
			if err != nil {
				return err
			}
			req := client.NetworkCreateOptions{Driver: driver, Internal: internal, Options: o, Labels: l}
			if subnet != "" || gateway != "" || ipRange != "" {
				var cfg network.IPAMConfig
				for _, f := range []struct {
					flag, v string
					set     func(string) error
				}{
					{"subnet", subnet, func(v string) (err error) { cfg.Subnet, err = netip.ParsePrefix(v); return }},
					{"ip-range", ipRange, func(v string) (err error) { cfg.IPRange, err = netip.ParsePrefix(v); return }},
					{"gateway", gateway, func(v string) (err error) { cfg.Gateway, err = netip.ParseAddr(v); return }},
				} {
					if f.v != "" {
						if err := f.set(f.v); err != nil {
							return fmt.Errorf("--%s %q: %w", f.flag, f.v, err)
						}
					}
				}
				req.IPAM = &network.IPAM{Config: []network.IPAMConfig{cfg}}
			}
			res, err := c.NetworkCreate(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			fmt.Println(res.ID)
			return nil
		}),
	}
	create.Flags().StringVarP(&driver, "driver", "d", "bridge", "network driver")
	create.Flags().StringVar(&subnet, "subnet", "", "IPv4 subnet in CIDR form")
	create.Flags().StringVar(&gateway, "gateway", "", "gateway address in the subnet")
	create.Flags().StringVar(&ipRange, "ip-range", "", "allocate container addresses from this sub-range")
	create.Flags().BoolVar(&internal, "internal", false, "no traffic in or out of the network")
	create.Flags().StringArrayVarP(&opts, "opt", "o", nil, "driver option key=value (com.docker.network.driver.mtu)")
	create.Flags().StringArrayVar(&labels, "label", nil, "label key=value")

	ls := &cobra.Command{
		Use:   "ls",
		Short: "List networks",
		Args:  cobra.NoArgs,
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			res, err := c.NetworkList(cmd.Context(), client.NetworkListOptions{})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "NETWORK ID\tNAME\tDRIVER\tSCOPE")
			for _, n := range res.Items {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", n.ID[:12], n.Name, n.Driver, n.Scope)
			}
			return tw.Flush()
		}),
	}
	inspect := &cobra.Command{
		Use:   "inspect NETWORK [NETWORK...]",
		Short: "Show networks' details",
		Args:  cobra.MinimumNArgs(1),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			return inspectEach(args, func(name string) (any, error) {
				res, err := c.NetworkInspect(cmd.Context(), name, client.NetworkInspectOptions{})
				return res.Network, err
			})
		}),
	}
	rm := &cobra.Command{
		Use:   "rm NETWORK [NETWORK...]",
		Short: "Remove networks (not one in use, nor a predefined one)",
		Args:  cobra.MinimumNArgs(1),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			return removeEach(args, func(name string) error {
				_, err := c.NetworkRemove(cmd.Context(), name, client.NetworkRemoveOptions{})
				return err
			})
		}),
	}
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove user-defined networks no container uses",
		Args:  cobra.NoArgs,
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			res, err := c.NetworkPrune(cmd.Context(), client.NetworkPruneOptions{})
			if err != nil {
				return err
			}
			for _, n := range res.Report.NetworksDeleted {
				fmt.Println(n)
			}
			return nil
		}),
	}
	cmd.AddCommand(create, ls, inspect, rm, prune)
	return cmd
}

func updateCmd() *cobra.Command {
	var bandwidth string
	cmd := &cobra.Command{
		Use:   "update --bandwidth RATE CONTAINER",
		Short: "Change a container's network bandwidth limit, also while it runs",
		Args:  cobra.ExactArgs(1),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			if !cmd.Flags().Changed("bandwidth") {
				return errors.New("update: nothing to change (--bandwidth)")
			}
			return setBandwidth(cmd.Context(), c, args[0], bandwidth)
		}),
	}
	cmd.Flags().StringVar(&bandwidth, "bandwidth", "", `10mbit both ways, egress=10mbit,ingress=2mbit, or "" for none`)
	return cmd
}

// setBandwidth calls berthd's extension POST /containers/{id}/bandwidth
// (the SDK has no method for it) over the client's own connection.
func setBandwidth(ctx context.Context, c *client.Client, ref, spec string) error {
	body, _ := json.Marshal(map[string]string{"Bandwidth": spec})
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return c.Dialer()(ctx)
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://berthd/containers/"+ref+"/bandwidth", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var e struct{ Message string }
		b, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(b, &e) != nil || e.Message == "" {
			e.Message = string(b)
		}
		return fmt.Errorf("Error response from daemon: %s", e.Message)
	}
	return nil
}
