// Package nsenter holds the C constructor that joins and creates namespaces
// before the Go runtime starts (see nsenter.c for the protocol). Import it
// for its side effect from any binary that serves as a container init:
//
//	import _ "github.com/berth-project/berth/container/nsenter"
package nsenter

/*
#cgo CFLAGS: -Wall -Wextra -O2
*/
import "C"

// SyncEnv names the environment variable that carries the sync socket's
// file descriptor number to the constructor.
const SyncEnv = "_BERTH_SYNC"
