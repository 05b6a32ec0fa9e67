package main

import (
	"encoding/json"
	"os"

	"github.com/berth-project/berth/container"
	"github.com/spf13/cobra"
)

func stateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "state <container-id>",
		Short: "Print a container's OCI state as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := container.Load(global.root, args[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(c.OCIState())
		},
	}
}
