package main

import (
	"github.com/berth-project/berth/container"
	"github.com/spf13/cobra"
)

func pauseCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pause <container-id>",
		Short: "Freeze every process of a running container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := container.Load(global.root, args[0])
			if err != nil {
				return err
			}
			return c.Pause()
		},
	}
}

func resumeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "resume <container-id>",
		Short: "Thaw a paused container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := container.Load(global.root, args[0])
			if err != nil {
				return err
			}
			return c.Resume()
		},
	}
}
