package main

import (
	"encoding/json"
	"os"
	"time"

	"github.com/berth-project/berth/container"
)

// event is one line of `events` output, as runc prints them.
type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

// oomPoll is how often the stream checks for OOM kills.
const oomPoll = 100 * time.Millisecond

func eventsCmd() *command {
	var stats bool
	var interval time.Duration
	cmd := &command{
		use:   "events [flags] <container-id>",
		short: "Print a container's resource usage and OOM events as JSON lines",
		args:  exactArgs(1),
		run: func(cmd *command, args []string) error {
			c, err := container.Load(global.root, args[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(os.Stdout)
			emitStats := func() error {
				s, err := c.Stats()
				if err != nil {
					return err
				}
				return enc.Encode(event{Type: "stats", ID: c.ID(), Data: s})
			}
			if stats {
				return emitStats()
			}
			// The stream: stats every interval, an "oom" event as soon as
			// the kernel counts a new OOM kill; it ends with the container.
			ooms, _ := c.OOMKills()
			lastStats := time.Time{}
			for c.Status() != container.Stopped {
				if time.Since(lastStats) >= interval {
					if err := emitStats(); err != nil {
						return err
					}
					lastStats = time.Now()
				}
				if n, err := c.OOMKills(); err == nil && n > ooms {
					ooms = n
					if err := enc.Encode(event{Type: "oom", ID: c.ID()}); err != nil {
						return err
					}
				}
				time.Sleep(oomPoll)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&stats, "stats", false, "print one stats event and exit")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "time between stats events")
	return cmd
}
