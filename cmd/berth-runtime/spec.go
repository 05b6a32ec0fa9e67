package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/berth-project/berth/container"
)

func specCmd() *command {
	var bundle string
	var rootless bool
	cmd := &command{
		use:   "spec [flags]",
		short: "Write a template config.json into the bundle directory",
		args:  noArgs,
		run: func(cmd *command, args []string) error {
			path := filepath.Join(bundle, "config.json")
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("%s exists already: remove it first", path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			b, err := json.MarshalIndent(container.TemplateSpec(rootless), "", "\t")
			if err != nil {
				return err
			}
			return os.WriteFile(path, append(b, '\n'), 0o644)
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "bundle directory to write config.json into")
	cmd.Flags().BoolVar(&rootless, "rootless", false, "write a template for a container run by an unprivileged user")
	return cmd
}
