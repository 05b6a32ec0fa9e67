// The Go runtime's container-aware GOMAXPROCS is of no use to the monitor
// or to the container inits it re-executes.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command berth-monitor is the parent of every container berthd runs (see
// package monitor). berthd starts it when none is listening; it exits by
// itself once it holds no container and no client for a few seconds.
//
// Usage: berth-monitor <root>
package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/berth-project/berth/container/initproc"
	_ "github.com/berth-project/berth/container/nsenter"
	"github.com/berth-project/berth/monitor"
)

func main() {
	if initproc.IsInit() {
		initproc.Main()
	}
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: berth-monitor <root>")
		os.Exit(2)
	}
	// The monitor lives long: a tighter Go heap keeps its idle memory low
	// (bench/daemon.sh).
	debug.SetGCPercent(25)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := monitor.NewServer(os.Args[1], log).Serve(); err != nil {
		fmt.Fprintln(os.Stderr, "berth-monitor:", err)
		os.Exit(1)
	}
}
