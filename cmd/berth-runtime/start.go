package main

import (
	"github.com/berth-project/berth/container"
)

func startCmd() *command {
	return &command{
		use:   "start <container-id>",
		short: "Start the user's process in a created container",
		args:  exactArgs(1),
		run: func(cmd *command, args []string) error {
			c, err := container.Load(global.root, args[0])
			if err != nil {
				return err
			}
			return c.Start()
		},
	}
}
