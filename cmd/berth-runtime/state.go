package main

import (
	"encoding/json"
	"os"

	"github.com/berth-project/berth/container"
)

func stateCmd() *command {
	return &command{
		use:   "state <container-id>",
		short: "Print a container's OCI state as JSON",
		args:  exactArgs(1),
		run: func(cmd *command, args []string) error {
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
