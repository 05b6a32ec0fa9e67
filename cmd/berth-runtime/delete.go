package main

import (
	"github.com/berth-project/berth/container"
	"github.com/berth-project/berth/errdefs"
)

func deleteCmd() *command {
	var force bool
	cmd := &command{
		use:     "delete [flags] <container-id>",
		aliases: []string{"rm"},
		short:   "Delete a stopped container (--force: any container)",
		args:    exactArgs(1),
		run: func(cmd *command, args []string) error {
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
