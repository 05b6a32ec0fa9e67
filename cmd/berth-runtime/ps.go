package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-project/berth/container"
)

func psCmd() *command {
	var format string
	cmd := &command{
		use:   "ps [flags] <container-id> [ps options]",
		short: "List the processes in a container",
		args:  minimumNArgs(1),
		run: func(cmd *command, args []string) error {
			c, err := container.Load(global.root, args[0])
			if err != nil {
				return err
			}
			pids, err := c.Pids()
			if err != nil {
				return err
			}
			switch format {
			case "json":
				if pids == nil {
					pids = []int{}
				}
				return json.NewEncoder(os.Stdout).Encode(pids)
			case "table":
			default:
				return fmt.Errorf("--format %q: must be table or json", format)
			}
			psArgs := args[1:]
			if len(psArgs) == 0 {
				psArgs = []string{"-ef"}
			}
			out, err := output("ps", psArgs...)
			if err != nil {
				return fmt.Errorf("ps %s: %w", strings.Join(psArgs, " "), err)
			}
			lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			col := -1
			for i, h := range strings.Fields(lines[0]) {
				if h == "PID" {
					col = i
				}
			}
			if col < 0 {
				return fmt.Errorf("ps output has no PID column")
			}
			in := map[int]bool{}
			for _, p := range pids {
				in[p] = true
			}
			var b bytes.Buffer
			b.WriteString(lines[0] + "\n")
			for _, l := range lines[1:] {
				f := strings.Fields(l)
				if len(f) > col {
					if p, err := strconv.Atoi(f[col]); err == nil && in[p] {
						b.WriteString(l + "\n")
					}
				}
			}
			_, err = os.Stdout.Write(b.Bytes())
			return err
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// output runs a program found in $PATH and returns its standard output.
// (os.StartProcess, not os/exec: the runtime's binary size is its memory.)
func output(name string, args ...string) ([]byte, error) {
	path := ""
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			path = p
			break
		}
	}
	if path == "" {
		return nil, fmt.Errorf("%s: not found in $PATH", name)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	proc, err := os.StartProcess(path, append([]string{name}, args...), &os.ProcAttr{Files: []*os.File{nil, w, os.Stderr}})
	w.Close()
	if err != nil {
		r.Close()
		return nil, err
	}
	out, rerr := io.ReadAll(r)
	r.Close()
	st, err := proc.Wait()
	if err == nil && !st.Success() {
		err = errors.New(st.String())
	}
	if err == nil {
		err = rerr
	}
	return out, err
}
