package main

import (
	"fmt"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the client's and the daemon's versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Printf("Client:\n Version:    %s\n API version: %s\n", version, client.MaxAPIVersion)
			c, err := apiClient()
			if err != nil {
				return err
			}
			v, err := c.ServerVersion(cmd.Context(), client.ServerVersionOptions{})
			if err != nil {
				return err
			}
			fmt.Printf("Server: %s\n Version:    %s\n API version: %s (minimum %s)\n OS/Arch:    %s/%s\n",
				v.Platform.Name, v.Version, v.APIVersion, v.MinAPIVersion, v.Os, v.Arch)
			return nil
		},
	}
}

func infoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "info",
		Short: "Show the daemon's system-wide information",
		Args:  cobra.NoArgs,
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			res, err := c.Info(cmd.Context(), client.InfoOptions{})
			if err != nil {
				return err
			}
			i := res.Info
			fmt.Printf("Containers: %d\n Running: %d\n Paused: %d\n Stopped: %d\nImages: %d\nServer Version: %s\nStorage Driver: %s\nLogging Driver: %s\nCgroup Driver: %s\nCgroup Version: %s\nKernel Version: %s\nOperating System: %s\nArchitecture: %s\nCPUs: %d\nTotal Memory: %d\nName: %s\nData Root: %s\n",
				i.Containers, i.ContainersRunning, i.ContainersPaused, i.ContainersStopped, i.Images, i.ServerVersion,
				i.Driver, i.LoggingDriver, i.CgroupDriver, i.CgroupVersion, i.KernelVersion, i.OperatingSystem,
				i.Architecture, i.NCPU, i.MemTotal, i.Name, i.DockerRootDir)
			for _, kv := range i.DriverStatus {
				fmt.Printf(" %s: %s\n", kv[0], kv[1])
			}
			return nil
		}),
	}
}
