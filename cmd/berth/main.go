// Command berth is Berth's client: a docker-style command line that talks
// to berthd over the Docker Engine API (the Docker Go SDK, so any daemon
// speaking that API will do). One file per group of commands; they parse
// flags and call the API, nothing more.
//
// The daemon is found at -H/--host, else $BERTH_HOST, else $DOCKER_HOST,
// else unix:///run/berth/berth.sock.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// DefaultHost is berthd's default socket.
const DefaultHost = "unix:///run/berth/berth.sock"

var global struct {
	host string
}

// api is the client of the daemon, made on first use.
var api *client.Client

func apiClient() (*client.Client, error) {
	if api != nil {
		return api, nil
	}
	host := global.host
	for _, env := range []string{"BERTH_HOST", "DOCKER_HOST"} {
		if host == "" {
			host = os.Getenv(env)
		}
	}
	if host == "" {
		host = DefaultHost
	}
	c, err := client.New(client.WithHost(host))
	if err != nil {
		return nil, err
	}
	api = c
	return api, nil
}

// withAPI adapts a command body that talks to the daemon: the client is
// made (once) before it runs.
func withAPI(run func(cmd *cobra.Command, c *client.Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := apiClient()
		if err != nil {
			return err
		}
		return run(cmd, c, args)
	}
}

// statusError carries an exit status out of a command (run, exec): the
// container's, or 125 with err when the command itself failed (docker
// run's convention).
type statusError struct {
	code int
	err  error
}

func (e statusError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

func main() {
	root := &cobra.Command{
		Use:           "berth",
		Short:         "Berth, a container engine",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVarP(&global.host, "host", "H", "", "daemon socket: unix:///path or tcp://host:port (default $BERTH_HOST, $DOCKER_HOST, "+DefaultHost+")")
	root.AddCommand(
		runCmd(), createCmd(), startCmd(), psCmd(), logsCmd(), execCmd(), stopCmd(), killCmd(), restartCmd(),
		rmCmd(), inspectCmd(), waitCmd(), renameCmd(), topCmd(), statsCmd(), pauseCmd(), unpauseCmd(),
		buildCmd(), pullCmd(), imagesCmd(), tagCmd(), rmiCmd(), imageCmd(), saveCmd(), loadCmd(), importCmd(),
		volumeCmd(), networkCmd(), updateCmd(), systemCmd(), versionCmd(), infoCmd(),
	)
	err := root.ExecuteContext(context.Background())
	if api != nil {
		api.Close()
	}
	if err == nil {
		return
	}
	code := 1
	var st statusError
	if errors.As(err, &st) {
		code = st.code
		if st.err == nil {
			os.Exit(code)
		}
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "Error") {
		msg = "berth: " + msg
	}
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(code)
}
