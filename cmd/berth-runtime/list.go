package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/berth-project/berth/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
)

// listEntry is one container in `list --format json`, as runc prints it.
type listEntry struct {
	Version     string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Owner       string            `json:"owner"`
}

func listCmd() *cobra.Command {
	var quiet bool
	var format string
	cmd := &cobra.Command{
		Use:     "list [flags]",
		Aliases: []string{"ls"},
		Short:   "List containers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := container.List(global.root)
			if err != nil {
				return err
			}
			if quiet {
				for _, c := range cs {
					fmt.Println(c.ID())
				}
				return nil
			}
			entries := make([]listEntry, 0, len(cs))
			for _, c := range cs {
				st, s := c.OCIState(), c.State()
				entries = append(entries, listEntry{
					Version: specs.Version, ID: st.ID, Pid: st.Pid, Status: string(st.Status),
					Bundle: st.Bundle, Rootfs: s.Spec.Root.Path, Created: s.Created,
					Annotations: st.Annotations, Owner: s.Owner,
				})
			}
			switch format {
			case "json":
				return json.NewEncoder(os.Stdout).Encode(entries)
			case "table":
				w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
				fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
				for _, e := range entries {
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", e.ID, e.Pid, e.Status, e.Bundle, e.Created.Format(time.RFC3339Nano), e.Owner)
				}
				return w.Flush()
			}
			return fmt.Errorf("--format %q: must be table or json", format)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the ids")
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return cmd
}
