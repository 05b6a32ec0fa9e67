package main

import (
	"github.com/berth-project/berth/container"
)

func pauseCmd() *command {
	return &command{
		use:   "pause <container-id>",
		short: "Freeze every process of a running container",
		args:  exactArgs(1),
		run: func(cmd *command, args []string) error {
			c, err := container.Load(global.root, args[0])
			if err != nil {
				return err
			}
			return c.Pause()
		},
	}
}

func resumeCmd() *command {
	return &command{
		use:   "resume <container-id>",
		short: "Thaw a paused container",
		args:  exactArgs(1),
		run: func(cmd *command, args []string) error {
			c, err := container.Load(global.root, args[0])
			if err != nil {
				return err
			}
			return c.Resume()
		},
	}
}
