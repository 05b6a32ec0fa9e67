package main

import (
	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/errdefs"
	"github.com/spf13/cobra"
)

func deleteCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "delete [flags] <container-id>",
		Aliases: []string{"rm"},
		Short:   "Delete a stopped container (--force: any container)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := container.Load(global.root, args[0])
			if err != nil {
				if force && errdefs.NotFound(err) {
					return nil
				}
				return err
			}
			return c.Delete(force)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill the container first if it is running")
	return cmd
}
