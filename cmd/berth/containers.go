package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// eachContainer runs fn on every argument, printing the name of each
// success as docker does, and reports all failures.
func eachContainer(args []string, fn func(c *client.Client, id string) error) error {
	c, err := apiClient()
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range args {
		if err := fn(c, id); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Println(id)
	}
	return errors.Join(errs...)
}

func startCmd() *cobra.Command {
	var attach, interactive bool
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start stopped containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !attach && !interactive {
				return eachContainer(args, func(c *client.Client, id string) error {
					_, err := c.ContainerStart(cmd.Context(), id, client.ContainerStartOptions{})
					return err
				})
			}
			if len(args) > 1 {
				return errors.New("you cannot start and attach multiple containers at once")
			}
			c, err := apiClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			info, err := c.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			tty := info.Container.Config.Tty
			f := &createFlags{tty: tty, interactive: interactive && info.Container.Config.OpenStdin, rm: info.Container.HostConfig.AutoRemove}
			return runAttached(ctx, c, info.Container.ID, f, "ctrl-p,ctrl-q")
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "attach stdout/stderr and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "attach stdin")
	return cmd
}

func psCmd() *cobra.Command {
	var all, quiet, noTrunc bool
	var filters []string
	var last int
	cmd := &cobra.Command{
		Use:     "ps [OPTIONS]",
		Aliases: []string{"ls"},
		Short:   "List containers",
		Args:    cobra.NoArgs,
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			f := client.Filters{}
			for _, kv := range filters {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("bad filter %q: want key=value", kv)
				}
				f.Add(k, v)
			}
			res, err := c.ContainerList(cmd.Context(), client.ContainerListOptions{All: all || last > 0, Limit: last, Filters: f})
			if err != nil {
				return err
			}
			short := func(id string) string {
				if noTrunc {
					return id
				}
				return id[:12]
			}
			if quiet {
				for _, s := range res.Items {
					fmt.Println(short(s.ID))
				}
				return nil
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
			for _, s := range res.Items {
				command := s.Command
				if !noTrunc && len(command) > 20 {
					command = command[:19] + "…"
				}
				names := make([]string, len(s.Names))
				for i, n := range s.Names {
					names[i] = strings.TrimPrefix(n, "/")
				}
				fmt.Fprintf(tw, "%s\t%s\t%q\t%s\t%s\t\t%s\n", short(s.ID), s.Image, command, ago(time.Unix(s.Created, 0)), s.Status, strings.Join(names, ","))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "all containers, not only running ones")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only ids")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "full ids and commands")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "status=, name=, label=, id=, ancestor=, exited=")
	cmd.Flags().IntVarP(&last, "last", "n", 0, "the last n containers")
	return cmd
}

func logsCmd() *cobra.Command {
	var o client.ContainerLogsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Show a container's output",
		Args:  cobra.ExactArgs(1),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			ctx := cmd.Context()
			info, err := c.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			o.ShowStdout, o.ShowStderr = true, true
			rc, err := c.ContainerLogs(ctx, args[0], o)
			if err != nil {
				return err
			}
			defer rc.Close()
			if info.Container.Config.Tty {
				_, err = io.Copy(os.Stdout, rc)
			} else {
				_, err = stdcopy.StdCopy(os.Stdout, os.Stderr, rc)
			}
			return err
		}),
	}
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "follow the output until the container stops")
	cmd.Flags().BoolVarP(&o.Timestamps, "timestamps", "t", false, "show timestamps")
	cmd.Flags().StringVarP(&o.Tail, "tail", "n", "all", "lines from the end")
	cmd.Flags().StringVar(&o.Since, "since", "", "since a time (RFC 3339 or unix seconds)")
	cmd.Flags().StringVar(&o.Until, "until", "", "until a time (RFC 3339 or unix seconds)")
	return cmd
}

func execCmd() *cobra.Command {
	var o client.ExecCreateOptions
	var detach bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Run a command in a running container",
		Args:  cobra.MinimumNArgs(2),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			ctx := cmd.Context()
			o.Cmd = args[1:]
			o.AttachStdout, o.AttachStderr = !detach, !detach
			o.AttachStdin = o.AttachStdin && !detach
			if o.TTY && term.IsTerminal(int(os.Stdout.Fd())) {
				if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
					o.ConsoleSize = client.ConsoleSize{Height: uint(h), Width: uint(w)}
				}
			}
			created, err := c.ExecCreate(ctx, args[0], o)
			if err != nil {
				return err
			}
			if detach {
				_, err := c.ExecStart(ctx, created.ID, client.ExecStartOptions{Detach: true})
				return err
			}
			att, err := c.ExecAttach(ctx, created.ID, client.ExecAttachOptions{TTY: o.TTY, ConsoleSize: o.ConsoleSize})
			if err != nil {
				return err
			}
			defer att.Close()
			resize := func(h, w uint) error {
				_, err := c.ExecResize(ctx, created.ID, client.ExecResizeOptions{Height: h, Width: w})
				return err
			}
			if detached, err := stream(att.HijackedResponse, o.TTY, o.AttachStdin, detachKeys, resize); err != nil || detached {
				return err
			}
			res, err := c.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
			if err != nil {
				return err
			}
			return statusError{code: res.ExitCode}
		}),
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().BoolVarP(&o.TTY, "tty", "t", false, "allocate a terminal")
	cmd.Flags().BoolVarP(&o.AttachStdin, "interactive", "i", false, "keep standard input open")
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "run in the background")
	cmd.Flags().StringArrayVarP(&o.Env, "env", "e", nil, "set an environment variable")
	cmd.Flags().StringVarP(&o.WorkingDir, "workdir", "w", "", "working directory")
	cmd.Flags().StringVarP(&o.User, "user", "u", "", "user[:group]")
	cmd.Flags().BoolVar(&o.Privileged, "privileged", false, "every capability")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "ctrl-p,ctrl-q", "keys that detach from a terminal session")
	return cmd
}

func stopCmd() *cobra.Command {
	var timeout int
	var signal string
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop running containers (the stop signal, then SIGKILL)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := client.ContainerStopOptions{Signal: signal}
			if cmd.Flags().Changed("timeout") {
				o.Timeout = &timeout
			}
			return eachContainer(args, func(c *client.Client, id string) error {
				_, err := c.ContainerStop(cmd.Context(), id, o)
				return err
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "timeout", "t", 10, "seconds to wait before SIGKILL")
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "signal to send (default: the container's stop signal)")
	return cmd
}

func restartCmd() *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Restart containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := client.ContainerRestartOptions{}
			if cmd.Flags().Changed("timeout") {
				o.Timeout = &timeout
			}
			return eachContainer(args, func(c *client.Client, id string) error {
				_, err := c.ContainerRestart(cmd.Context(), id, o)
				return err
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "timeout", "t", 10, "seconds to wait before SIGKILL")
	return cmd
}

func killCmd() *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Send a signal (default SIGKILL) to containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(args, func(c *client.Client, id string) error {
				_, err := c.ContainerKill(cmd.Context(), id, client.ContainerKillOptions{Signal: signal})
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "signal name or number")
	return cmd
}

func rmCmd() *cobra.Command {
	var o client.ContainerRemoveOptions
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(args, func(c *client.Client, id string) error {
				_, err := c.ContainerRemove(cmd.Context(), id, o)
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&o.Force, "force", "f", false, "kill a running container first")
	cmd.Flags().BoolVarP(&o.RemoveVolumes, "volumes", "v", false, "remove anonymous volumes too")
	return cmd
}

func waitCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Wait for containers to stop and print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			var errs []error
			for _, id := range args {
				w := c.ContainerWait(cmd.Context(), id, client.ContainerWaitOptions{Condition: ctypes.WaitConditionNotRunning})
				select {
				case res := <-w.Result:
					fmt.Println(res.StatusCode)
				case err := <-w.Error:
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		}),
	}
}

func renameCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  cobra.ExactArgs(2),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			_, err := c.ContainerRename(cmd.Context(), args[0], client.ContainerRenameOptions{NewName: args[1]})
			return err
		}),
	}
}

func inspectCmd() *cobra.Command {
	var size bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER|IMAGE [...]",
		Short: "Show containers' or images' details as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: withAPI(func(cmd *cobra.Command, c *client.Client, args []string) error {
			var out []json.RawMessage
			var errs []error
			for _, ref := range args {
				res, err := c.ContainerInspect(cmd.Context(), ref, client.ContainerInspectOptions{Size: size})
				if err == nil {
					out = append(out, res.Raw)
					continue
				}
				if !isNotFound(err) {
					errs = append(errs, err)
					continue
				}
				img, ierr := c.ImageInspect(cmd.Context(), ref)
				if ierr != nil {
					errs = append(errs, fmt.Errorf("Error: No such object: %s", ref))
					continue
				}
				raw, _ := json.Marshal(img.InspectResponse)
				out = append(out, raw)
			}
			if len(out) > 0 {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "    ")
				if err := enc.Encode(out); err != nil {
					return err
				}
			}
			return errors.Join(errs...)
		}),
	}
	cmd.Flags().BoolVarP(&size, "size", "s", false, "measure the writable layer")
	return cmd
}

func ago(t time.Time) string {
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "Less than a minute ago"
	case d < time.Hour:
		return fmt.Sprintf("%d minutes ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}
