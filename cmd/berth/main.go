// Command berth is Berth's command line. Until berthd serves the Docker
// Engine API, its image commands are thin wrappers that open the image
// store on the data root directly (one process at a time holds it).
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/berth-project/berth/image"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

var global struct {
	dataRoot string
	insecure []string
}

func main() {
	root := &cobra.Command{
		Use:           "berth",
		Short:         "Berth, a container engine",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Every command works on the image store; it is opened once here.
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			var err error
			store, err = image.Open(image.Options{Root: global.dataRoot, InsecureRegistries: global.insecure})
			return err
		},
	}
	root.PersistentFlags().StringVar(&global.dataRoot, "data-root", "/var/lib/berth", "root of Berth's persistent state")
	root.PersistentFlags().StringSliceVar(&global.insecure, "insecure-registry", nil, "registry host:port to speak plain HTTP to (repeatable)")
	root.AddCommand(pullCmd(), imagesCmd(), tagCmd(), rmiCmd(), imageCmd(), saveCmd(), loadCmd(), importCmd())
	err := root.Execute()
	if store != nil {
		store.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth:", err)
		os.Exit(1)
	}
}

// store is the image store on the data root, open while a command runs.
var store *image.Store
