package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/berth-project/berth/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
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

func listCmd() *command {
	var quiet bool
	var format string
	cmd := &command{
		use:     "list [flags]",
		aliases: []string{"ls"},
		short:   "List containers",
		args:    noArgs,
		run: func(cmd *command, args []string) error {
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
				rows := [][]string{{"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"}}
				for _, e := range entries {
					rows = append(rows, []string{e.ID, strconv.Itoa(e.Pid), e.Status, e.Bundle, e.Created.Format(time.RFC3339Nano), e.Owner})
				}
				return printTable(os.Stdout, rows)
			}
			return fmt.Errorf("--format %q: must be table or json", format)
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the ids")
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return cmd
}

// printTable writes rows in columns as wide as their widest cell plus three
// spaces, and at least 12 (runc's layout). (Not text/tabwriter: the runtime's binary size is its
// memory.)
func printTable(w io.Writer, rows [][]string) error {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", max(widths[i]+3, 12)-len(c)))
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}
