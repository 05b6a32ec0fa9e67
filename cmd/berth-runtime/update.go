package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/berth-project/berth/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func updateCmd() *command {
	var resources string
	var f struct {
		blkioWeight                                         uint16
		cpuPeriod, cpuRtPeriod, cpuShare                    uint64
		cpuQuota, cpuRtRuntime                              int64
		cpusetCpus, cpusetMems                              string
		memory, memoryReservation, memorySwap, kernelMemTCP string
		pidsLimit                                           int64
	}
	cmd := &command{
		use:   "update [flags] <container-id>",
		short: "Change the resource limits of a container",
		args:  exactArgs(1),
		run: func(cmd *command, args []string) error {
			c, err := container.Load(global.root, args[0])
			if err != nil {
				return err
			}
			r := &specs.LinuxResources{}
			if resources != "" {
				var in io.Reader = os.Stdin
				if resources != "-" {
					fh, err := os.Open(resources)
					if err != nil {
						return fmt.Errorf("--resources: %w", err)
					}
					defer fh.Close()
					in = fh
				}
				if err := json.NewDecoder(in).Decode(r); err != nil {
					return fmt.Errorf("--resources %s: malformed JSON: %w", resources, err)
				}
			}
			fl := cmd.Flags()
			cpu := func() *specs.LinuxCPU {
				if r.CPU == nil {
					r.CPU = &specs.LinuxCPU{}
				}
				return r.CPU
			}
			mem := func() *specs.LinuxMemory {
				if r.Memory == nil {
					r.Memory = &specs.LinuxMemory{}
				}
				return r.Memory
			}
			if fl.Changed("blkio-weight") {
				r.BlockIO = &specs.LinuxBlockIO{Weight: &f.blkioWeight}
			}
			if fl.Changed("cpu-period") {
				cpu().Period = &f.cpuPeriod
			}
			if fl.Changed("cpu-quota") {
				cpu().Quota = &f.cpuQuota
			}
			if fl.Changed("cpu-share") {
				cpu().Shares = &f.cpuShare
			}
			if fl.Changed("cpu-rt-period") {
				cpu().RealtimePeriod = &f.cpuRtPeriod
			}
			if fl.Changed("cpu-rt-runtime") {
				cpu().RealtimeRuntime = &f.cpuRtRuntime
			}
			if fl.Changed("cpuset-cpus") {
				cpu().Cpus = f.cpusetCpus
			}
			if fl.Changed("cpuset-mems") {
				cpu().Mems = f.cpusetMems
			}
			for _, m := range []struct {
				flag string
				val  string
				dst  func(int64)
			}{
				{"memory", f.memory, func(v int64) { mem().Limit = &v }},
				{"memory-reservation", f.memoryReservation, func(v int64) { mem().Reservation = &v }},
				{"memory-swap", f.memorySwap, func(v int64) { mem().Swap = &v }},
				{"kernel-memory-tcp", f.kernelMemTCP, func(v int64) { mem().KernelTCP = &v }},
			} {
				if !fl.Changed(m.flag) {
					continue
				}
				v, err := parseBytes(m.val)
				if err != nil {
					return fmt.Errorf("--%s: %w", m.flag, err)
				}
				m.dst(v)
			}
			if fl.Changed("pids-limit") {
				r.Pids = &specs.LinuxPids{Limit: f.pidsLimit}
			}
			return c.Update(r)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&resources, "resources", "r", "", "path to a JSON file of linux.resources, or - for stdin")
	fl.Uint16Var(&f.blkioWeight, "blkio-weight", 0, "block IO weight (10-1000)")
	fl.Uint64Var(&f.cpuPeriod, "cpu-period", 0, "CPU CFS period in microseconds")
	fl.Int64Var(&f.cpuQuota, "cpu-quota", 0, "CPU CFS quota in microseconds per period")
	fl.Uint64Var(&f.cpuShare, "cpu-share", 0, "CPU shares (relative weight)")
	fl.Uint64Var(&f.cpuRtPeriod, "cpu-rt-period", 0, "CPU realtime period in microseconds")
	fl.Int64Var(&f.cpuRtRuntime, "cpu-rt-runtime", 0, "CPU realtime runtime in microseconds")
	fl.StringVar(&f.cpusetCpus, "cpuset-cpus", "", "CPUs to run on (0-3, 0,1)")
	fl.StringVar(&f.cpusetMems, "cpuset-mems", "", "memory nodes to use")
	fl.StringVar(&f.memory, "memory", "", "memory limit (bytes, or with k/m/g; -1 for none)")
	fl.StringVar(&f.memoryReservation, "memory-reservation", "", "memory soft limit")
	fl.StringVar(&f.memorySwap, "memory-swap", "", "memory plus swap limit; -1 for none")
	fl.StringVar(&f.kernelMemTCP, "kernel-memory-tcp", "", "kernel TCP buffer limit (v1)")
	fl.Int64Var(&f.pidsLimit, "pids-limit", 0, "maximum number of processes (-1 for none)")
	return cmd
}

// parseBytes accepts "1024", "512k", "64m", "2g" (binary units) and -1.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k") || strings.HasSuffix(s, "kb"):
		mult, s = 1<<10, strings.TrimRight(s, "kb")
	case strings.HasSuffix(s, "m") || strings.HasSuffix(s, "mb"):
		mult, s = 1<<20, strings.TrimRight(s, "mb")
	case strings.HasSuffix(s, "g") || strings.HasSuffix(s, "gb"):
		mult, s = 1<<30, strings.TrimRight(s, "gb")
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	if v == -1 {
		return -1, nil
	}
	return v * mult, nil
}
