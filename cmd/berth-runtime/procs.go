package main

import "C" // procs.c: GOMAXPROCS=1 before the Go runtime starts

import "os"

// forgetProcs removes what procs.c set, so that children do not inherit it.
func forgetProcs() {
	if os.Getenv("_BERTH_GOMAXPROCS") == "1" {
		os.Unsetenv("GOMAXPROCS")
		os.Unsetenv("_BERTH_GOMAXPROCS")
	}
}
