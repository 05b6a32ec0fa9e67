package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/berth-project/berth/internal/units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// keyValues turns repeated key=value flags into a map; a missing "="
// is an error naming the flag.
func keyValues(flag string, list []string) (map[string]string, error) {
	m := map[string]string{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: want key=value", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

func volumeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "volume", Short: "Manage volumes"}
	var driver string
	var opts, labels []string
	create := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume (size=1G limits it)",
		Args:  cobra.MaximumNArgs(1),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			o, err := keyValues("opt", opts)
			if err != nil {
				return err
			}
			l, err := keyValues("label", labels)
			if err != nil {
				return err
			}
			req := client.VolumeCreateOptions{Driver: driver, DriverOpts: o, Labels: l}
			if len(args) == 1 {
				req.Name = args[0]
			}
			res, err := c.VolumeCreate(cmd.Context(), req)
			if err != nil {
				return err
			}
			fmt.Println(res.Volume.Name)
			return nil
		}),
	}
	create.Flags().StringVarP(&driver, "driver", "d", "local", "volume driver")
	create.Flags().StringArrayVarP(&opts, "opt", "o", nil, "driver option key=value (type, device, o, size)")
	create.Flags().StringArrayVar(&labels, "label", nil, "label key=value")

	var quiet bool
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List volumes",
		Args:  cobra.NoArgs,
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			res, err := c.VolumeList(cmd.Context(), client.VolumeListOptions{})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			if !quiet {
				fmt.Fprintln(tw, "DRIVER\tVOLUME NAME")
			}
			for _, v := range res.Items {
				if quiet {
					fmt.Fprintln(tw, v.Name)
				} else {
					fmt.Fprintf(tw, "%s\t%s\n", v.Driver, v.Name)
				}
			}
			return tw.Flush()
		}),
	}
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "only volume names")

	inspect := &cobra.Command{
		Use:   "inspect VOLUME [VOLUME...]",
		Short: "Show volumes' details",
		Args:  cobra.MinimumNArgs(1),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			return inspectEach(args, func(name string) (any, error) {
				res, err := c.VolumeInspect(cmd.Context(), name, client.VolumeInspectOptions{})
				return res.Volume, err
			})
		}),
	}

	var force bool
	rm := &cobra.Command{
		Use:   "rm [OPTIONS] VOLUME [VOLUME...]",
		Short: "Remove volumes (not one in use)",
		Args:  cobra.MinimumNArgs(1),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			return removeEach(args, func(name string) error {
				_, err := c.VolumeRemove(cmd.Context(), name, client.VolumeRemoveOptions{Force: force})
				return err
			})
		}),
	}
	rm.Flags().BoolVarP(&force, "force", "f", false, "no error for a volume that does not exist")

	var all bool
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove unused anonymous volumes (-a: every unused volume)",
		Args:  cobra.NoArgs,
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			res, err := c.VolumePrune(cmd.Context(), client.VolumePruneOptions{All: all})
			if err != nil {
				return err
			}
			for _, v := range res.Report.VolumesDeleted {
				fmt.Println(v)
			}
			fmt.Printf("Total reclaimed space: %s\n", units.HumanSize(int64(res.Report.SpaceReclaimed)))
			return nil
		}),
	}
	prune.Flags().BoolVarP(&all, "all", "a", false, "named volumes too")
	cmd.AddCommand(create, ls, inspect, rm, prune)
	return cmd
}

func systemCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "Manage the daemon's data"}
	var all, volumes bool
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove stopped containers, unused images (-a: not only dangling) and, with --volumes, unused anonymous volumes",
		Args:  cobra.NoArgs,
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			ctx := cmd.Context()
			var total uint64
			cres, err := c.ContainerPrune(ctx, client.ContainerPruneOptions{})
			if err != nil {
				return err
			}
			for _, id := range cres.Report.ContainersDeleted {
				fmt.Println("deleted container:", id)
			}
			total += cres.Report.SpaceReclaimed
			if volumes {
				vres, err := c.VolumePrune(ctx, client.VolumePruneOptions{})
				if err != nil {
					return err
				}
				for _, v := range vres.Report.VolumesDeleted {
					fmt.Println("deleted volume:", v)
				}
				total += vres.Report.SpaceReclaimed
			}
			f := client.Filters{}
			if all {
				f.Add("dangling", "false")
			}
			ires, err := c.ImagePrune(ctx, client.ImagePruneOptions{Filters: f})
			if err != nil {
				return err
			}
			for _, d := range ires.Report.ImagesDeleted {
				if d.Deleted != "" {
					fmt.Println("deleted image:", d.Deleted)
				}
			}
			total += ires.Report.SpaceReclaimed
			fmt.Printf("Total reclaimed space: %s\n", units.HumanSize(int64(total)))
			return nil
		}),
	}
	prune.Flags().BoolVarP(&all, "all", "a", false, "every image no container uses")
	prune.Flags().BoolVar(&volumes, "volumes", false, "unused anonymous volumes too")
	cmd.AddCommand(prune)
	return cmd
}

// inspectEach prints, as one JSON array, what get returns for each name;
// the names it fails for are reported after.
func inspectEach(names []string, get func(name string) (any, error)) error {
	out := []any{}
	var errs []error
	for _, name := range names {
		v, err := get(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, v)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "    ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// removeEach removes each name, printing those removed, and reports the
// failures after.
func removeEach(names []string, rm func(name string) error) error {
	var errs []error
	for _, name := range names {
		if err := rm(name); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Println(name)
	}
	return errors.Join(errs...)
}
