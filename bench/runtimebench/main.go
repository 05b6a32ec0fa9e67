// Command runtimebench times OCI runtimes side by side on one bundle: the
// full `run` of /bin/true, and create+start+delete. Runtimes take turns
// round by round, so that a noisy neighbour slows them alike; it prints
// medians, ratios to the first runtime and peak RSS (from wait4's rusage,
// which covers the runtime and the children it reaped).
//
// usage: runtimebench -bundle DIR -n 200 name=/path/to/runtime ...
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"
)

type runtime struct {
	name, bin, root string
}

type sample struct {
	wall   time.Duration
	maxRSS int64 // KiB
}

func main() {
	bundle := flag.String("bundle", "", "OCI bundle whose process is /bin/true")
	n := flag.Int("n", 200, "rounds")
	warm := flag.Int("warmup", 10, "warm-up rounds, not counted")
	flag.Parse()
	if *bundle == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: runtimebench -bundle DIR [-n N] name=/path/to/runtime ...")
		os.Exit(2)
	}
	out, err := os.CreateTemp("", "runtimebench-out-")
	if err != nil {
		panic(err)
	}
	defer os.Remove(out.Name())
	var rts []runtime
	for _, a := range flag.Args() {
		name, bin, ok := strings.Cut(a, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "runtime %q: want name=path\n", a)
			os.Exit(2)
		}
		root, err := os.MkdirTemp("", "bench-root-"+name+"-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(root)
		rts = append(rts, runtime{name, bin, root})
	}
	scenarios := []struct {
		name string
		run  func(rt runtime, id string) (sample, error)
	}{
		{"run /bin/true", func(rt runtime, id string) (sample, error) {
			return timed(rt, *bundle, [][]string{{"run", "--bundle", *bundle, id}}, out)
		}},
		{"create+start+delete", func(rt runtime, id string) (sample, error) {
			return timed(rt, *bundle, [][]string{
				{"create", "--bundle", *bundle, id}, {"start", id}, {"delete", "--force", id},
			}, out)
		}},
	}
	fmt.Printf("%d rounds (after %d warm-up), runtimes interleaved; median / p90 wall, peak RSS (median of per-round max)\n\n", *n, *warm)
	for _, sc := range scenarios {
		results := make([][]sample, len(rts))
		for round := 0; round < *warm+*n; round++ {
			for i, rt := range rts {
				s, err := sc.run(rt, fmt.Sprintf("bench-%d-%d", os.Getpid(), round))
				if err != nil {
					fmt.Fprintf(os.Stderr, "%s %s: %v\n", rt.name, sc.name, err)
					os.Exit(1)
				}
				if round >= *warm {
					results[i] = append(results[i], s)
				}
			}
		}
		fmt.Printf("%s\n", sc.name)
		fmt.Printf("  %-14s %10s %10s %12s %10s %10s\n", "runtime", "median", "p90", "peak RSS", "time ×", "RSS ×")
		base := summarize(results[0])
		for i, rt := range rts {
			s := summarize(results[i])
			fmt.Printf("  %-14s %8.2fms %8.2fms %9d KiB %9.2f× %9.2f×\n", rt.name,
				ms(s.median), ms(s.p90), s.rss, ms(s.median)/ms(base.median), float64(s.rss)/float64(base.rss))
		}
		fmt.Println()
	}
}

type summary struct {
	median, p90 time.Duration
	rss         int64
}

func summarize(ss []sample) summary {
	walls := make([]time.Duration, len(ss))
	rss := make([]int64, len(ss))
	for i, s := range ss {
		walls[i], rss[i] = s.wall, s.maxRSS
	}
	sort.Slice(walls, func(i, j int) bool { return walls[i] < walls[j] })
	sort.Slice(rss, func(i, j int) bool { return rss[i] < rss[j] })
	return summary{median: walls[len(walls)/2], p90: walls[len(walls)*9/10], rss: rss[len(rss)/2]}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// timed runs the commands in sequence and returns their total wall time and
// the largest peak RSS among them.
func timed(rt runtime, dir string, cmds [][]string, out *os.File) (sample, error) {
	var s sample
	for _, args := range cmds {
		cmd := exec.Command(rt.bin, append([]string{"--root", rt.root}, args...)...)
		cmd.Dir = dir
		// A file, not a pipe: a created container inherits the runtime's
		// stdio and would hold a pipe open after the runtime exits.
		cmd.Stdout, cmd.Stderr = out, out
		start := time.Now()
		err := cmd.Run()
		s.wall += time.Since(start)
		if err != nil {
			b, _ := os.ReadFile(out.Name())
			return s, fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, b)
		}
		if err := out.Truncate(0); err != nil {
			return s, err
		}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > s.maxRSS {
			s.maxRSS = ru.Maxrss
		}
	}
	return s, nil
}
