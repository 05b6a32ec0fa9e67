package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/berth-project/berth/internal/units"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func topCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Show a container's processes",
		Args:  cobra.MinimumNArgs(1),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			res, err := c.ContainerTop(cmd.Context(), args[0], client.ContainerTopOptions{Arguments: args[1:]})
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, strings.Join(res.Titles, "\t"))
			for _, p := range res.Processes {
				fmt.Fprintln(tw, strings.Join(p, "\t"))
			}
			return tw.Flush()
		}),
	}
}

func pauseCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER [CONTAINER...]",
		Short: "Freeze every process of containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(args, func(c *client.Client, id string) error {
				_, err := c.ContainerPause(cmd.Context(), id, client.ContainerPauseOptions{})
				return err
			})
		},
	}
}

func unpauseCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "unpause CONTAINER [CONTAINER...]",
		Short: "Thaw paused containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(args, func(c *client.Client, id string) error {
				_, err := c.ContainerUnpause(cmd.Context(), id, client.ContainerUnpauseOptions{})
				return err
			})
		},
	}
}

func statsCmd() *cobra.Command {
	var noStream bool
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] CONTAINER",
		Short: "Show a container's resource use (live, or once with --no-stream)",
		Args:  cobra.ExactArgs(1),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			res, err := c.ContainerStats(cmd.Context(), args[0], client.ContainerStatsOptions{Stream: !noStream, IncludePreviousSample: noStream})
			if err != nil {
				return err
			}
			defer res.Body.Close()
			dec := json.NewDecoder(res.Body)
			for first := true; ; first = false {
				var s ctypes.StatsResponse
				if err := dec.Decode(&s); errors.Is(err, io.EOF) {
					return nil
				} else if err != nil {
					return err
				}
				if !first {
					fmt.Print("\x1b[2J\x1b[H") // redraw in place
				}
				printStats(&s)
			}
		}),
	}
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "one sample, then exit")
	return cmd
}

// printStats prints one sample as docker stats does: CPU % over the
// interval since the previous sample, memory without the page cache.
func printStats(s *ctypes.StatsResponse) {
	cpu := 0.0
	dCPU := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	dSys := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	if dCPU > 0 && dSys > 0 {
		cpu = dCPU / dSys * float64(s.CPUStats.OnlineCPUs) * 100
	}
	mem := s.MemoryStats.Usage
	if inactive, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && inactive < mem {
		mem -= inactive
	} else if inactive, ok := s.MemoryStats.Stats["inactive_file"]; ok && inactive < mem {
		mem -= inactive
	}
	memPct := 0.0
	if s.MemoryStats.Limit > 0 {
		memPct = float64(mem) / float64(s.MemoryStats.Limit) * 100
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tPIDS")
	fmt.Fprintf(tw, "%s\t%s\t%.2f%%\t%s / %s\t%.2f%%\t%d\n", s.ID[:12], strings.TrimPrefix(s.Name, "/"), cpu,
		units.HumanSize(int64(mem)), units.HumanSize(int64(s.MemoryStats.Limit)), memPct, s.PidsStats.Current)
	tw.Flush()
}
