package main

import (
	"github.com/berth-project/berth/container"
	"github.com/spf13/cobra"
)

func startCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "start <container-id>",
		Short: "Start the user's process in a created container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := container.Load(global.root, args[0])
			if err != nil {
				return err
			}
			return c.Start()
		},
	}
}
