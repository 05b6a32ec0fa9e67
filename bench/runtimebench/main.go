// Command runtimebench times OCI runtimes side by side on one bundle: the
// full `run` of /bin/true, and create+start+delete. Runtimes take turns
// round by round, so that a noisy neighbour slows them alike; it prints
// medians and ratios to the first runtime.
//
// Peak RSS is measured in separate rounds through bench/rsswrap (see why
// there), so that the timing rounds run the runtimes directly.
//
// usage: runtimebench -bundle DIR [-n 200] [-rsswrap PATH] name=/path/to/runtime ...
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"time"
)

type runtime struct {
	name, bin, root string
}

type scenario struct {
	name string
	cmds func(bundle, id string) [][]string
}

var scenarios = []scenario{
	{"run /bin/true", func(bundle, id string) [][]string {
		return [][]string{{"run", "--bundle", bundle, id}}
	}},
	{"create+start+delete", func(bundle, id string) [][]string {
		return [][]string{{"create", "--bundle", bundle, id}, {"start", id}, {"delete", "--force", id}}
	}},
}

func main() {
	bundle := flag.String("bundle", "", "OCI bundle whose process is /bin/true")
	n := flag.Int("n", 200, "timing rounds")
	warm := flag.Int("warmup", 10, "warm-up rounds, not counted")
	wrap := flag.String("rsswrap", "", "the rsswrap binary; without it no RSS is measured")
	rssRounds := flag.Int("rss", 20, "rounds measuring peak RSS")
	flag.Parse()
	if *bundle == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: runtimebench -bundle DIR [-n N] [-rsswrap PATH] name=/path/to/runtime ...")
		os.Exit(2)
	}
	var rts []runtime
	for _, a := range flag.Args() {
		name, bin, ok := strings.Cut(a, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "runtime %q: want name=path\n", a)
			os.Exit(2)
		}
		root, err := os.MkdirTemp("", "bench-root-"+name+"-")
		check(err)
		defer os.RemoveAll(root)
		rts = append(rts, runtime{name, bin, root})
	}
	// A file, not a pipe, for the runtimes' output: a created container
	// inherits the runtime's stdio and would hold a pipe open.
	out, err := os.CreateTemp("", "runtimebench-out-")
	check(err)
	defer os.Remove(out.Name())

	fmt.Printf("%d timing rounds (after %d warm-up) and %d RSS rounds, runtimes interleaved\n\n", *n, *warm, *rssRounds)
	for _, sc := range scenarios {
		walls := make([][]time.Duration, len(rts))
		rss := make([][]int64, len(rts))
		round := 0
		each := func(rounds int, f func(i int, rt runtime, id string)) {
			for r := 0; r < rounds; r++ {
				for i, rt := range rts {
					round++
					f(i, rt, fmt.Sprintf("bench-%d-%d", os.Getpid(), round))
				}
			}
		}
		each(*warm, func(i int, rt runtime, id string) { mustRun(rt, sc.cmds(*bundle, id), out, "") })
		each(*n, func(i int, rt runtime, id string) {
			start := time.Now()
			mustRun(rt, sc.cmds(*bundle, id), out, "")
			walls[i] = append(walls[i], time.Since(start))
		})
		if *wrap != "" {
			each(*rssRounds, func(i int, rt runtime, id string) {
				rss[i] = append(rss[i], mustRun(rt, sc.cmds(*bundle, id), out, *wrap))
			})
		}
		fmt.Printf("%s\n  %-14s %10s %10s %12s %9s %9s\n", sc.name, "runtime", "median", "p90", "peak RSS", "time ×", "RSS ×")
		for i, rt := range rts {
			m, p := quantile(walls[i], 0.5), quantile(walls[i], 0.9)
			r := medianInt(rss[i])
			fmt.Printf("  %-14s %8.2fms %8.2fms %8d KiB %8.2f× %8.2f×\n", rt.name, ms(m), ms(p), r,
				ms(m)/ms(quantile(walls[0], 0.5)), ratio(r, medianInt(rss[0])))
		}
		fmt.Println()
	}
}

// mustRun runs the commands in sequence and, through wrap, returns the
// largest peak RSS among them (KiB); without wrap it returns 0.
func mustRun(rt runtime, cmds [][]string, out *os.File, wrap string) int64 {
	var peak int64
	for _, args := range cmds {
		argv := append([]string{rt.bin, "--root", rt.root}, args...)
		if wrap != "" {
			argv = append([]string{wrap}, argv...)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdout, cmd.Stderr = out, out
		var rd, wr *os.File
		if wrap != "" {
			var err error
			rd, wr, err = os.Pipe()
			check(err)
			cmd.ExtraFiles = []*os.File{wr}
		}
		err := cmd.Run()
		if wr != nil {
			wr.Close()
			b := make([]byte, 32)
			k, _ := rd.Read(b)
			rd.Close()
			if v, perr := strconv.ParseInt(strings.TrimSpace(string(b[:k])), 10, 64); perr == nil && v > peak {
				peak = v
			}
		}
		if err != nil {
			b, _ := os.ReadFile(out.Name())
			fmt.Fprintf(os.Stderr, "%s %s: %v: %s\n", rt.name, strings.Join(args, " "), err, b)
			os.Exit(1)
		}
		check(out.Truncate(0))
	}
	return peak
}

func quantile(ds []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*q)]
}

func medianInt(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]int64(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
