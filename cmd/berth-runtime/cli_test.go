package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// testApp is a small command line in the runtime's shape: global flags and
// two commands, one parsing flags only before its first argument.
// parsed is what testApp's flags and commands set.
type parsed struct {
	root, log, bundle, user string
	debug, detach, tty      bool
	env                     []string
	gids                    []int
	fds                     int
	interval                time.Duration
	args                    []string
	ran                     string
}

func testApp() (*app, *parsed) {
	v := &parsed{}
	a := &app{name: "rt", short: "test"}
	a.global.StringVar(&v.root, "root", "/run/x", "")
	a.global.StringVar(&v.log, "log", "", "")
	a.global.BoolVar(&v.debug, "debug", false, "")
	run := &command{use: "run <id>", aliases: []string{"r"}, args: exactArgs(1),
		run: func(cmd *command, args []string) error { v.ran, v.args = "run", args; return nil }}
	run.Flags().StringVarP(&v.bundle, "bundle", "b", ".", "")
	run.Flags().BoolVarP(&v.detach, "detach", "d", false, "")
	run.Flags().BoolVarP(&v.tty, "tty", "t", false, "")
	run.Flags().IntVar(&v.fds, "preserve-fds", 0, "")
	run.Flags().DurationVar(&v.interval, "interval", time.Second, "")
	exec := &command{use: "exec <id> <cmd>", args: minimumNArgs(1),
		run: func(cmd *command, args []string) error { v.ran, v.args = "exec", args; return nil }}
	exec.Flags().SetInterspersed(false)
	exec.Flags().StringArrayVarP(&v.env, "env", "e", nil, "")
	exec.Flags().StringVarP(&v.user, "user", "u", "", "")
	exec.Flags().IntSliceVarP(&v.gids, "additional-gids", "g", nil, "")
	exec.Flags().BoolVarP(&v.tty, "tty", "t", false, "")
	a.commands = []*command{run, exec}
	return a, v
}

func TestCLIFlags(t *testing.T) {
	a, v := testApp()
	err := a.execute([]string{"--root", "/r", "--debug", "run", "-b", "/b", "--preserve-fds=2", "c1", "--log=/l", "-dt", "--interval", "3s"})
	if err != nil {
		t.Fatal(err)
	}
	if v.ran != "run" || !slices.Equal(v.args, []string{"c1"}) || v.root != "/r" || !v.debug || v.bundle != "/b" ||
		v.fds != 2 || v.log != "/l" || !v.detach || !v.tty || v.interval != 3*time.Second {
		t.Errorf("parsed %+v", *v)
	}

	a, v = testApp()
	if err := a.execute([]string{"r", "-b/x", "--detach=false", "c2"}); err != nil {
		t.Fatal(err)
	}
	if v.ran != "run" || v.bundle != "/x" || v.detach || v.root != "/run/x" {
		t.Errorf("alias, attached shorthand value, bool=false: %+v", *v)
	}
	if !a.find("run").flags.Changed("bundle") || a.find("run").flags.Changed("preserve-fds") {
		t.Error("Changed does not tell the flags given")
	}

	// --version before the command prints and runs nothing; after it, it
	// is no flag of the command's.
	a, v = testApp()
	if err := a.execute([]string{"--root", "/r", "-v", "run", "c"}); err != nil || v.ran != "" {
		t.Errorf("-v: %v, ran %q", err, v.ran)
	}
	if err := a.execute([]string{"run", "--version", "c"}); err == nil || v.ran != "" {
		t.Errorf("run --version: %v, ran %q", err, v.ran)
	}
}

// exec's flags stop at the container id: what follows is the command line.
func TestCLIExecStopsAtFirstArgument(t *testing.T) {
	a, v := testApp()
	err := a.execute([]string{"exec", "-e", "A=1", "--env", "B=2", "-g", "1,2", "-g", "3", "-u", "5:6", "c1", "ls", "-la", "--env", "x"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(v.env, []string{"A=1", "B=2"}) || !slices.Equal(v.gids, []int{1, 2, 3}) || v.user != "5:6" {
		t.Errorf("flags: %+v", *v)
	}
	if !slices.Equal(v.args, []string{"c1", "ls", "-la", "--env", "x"}) {
		t.Errorf("arguments: %q", v.args)
	}
	a, v = testApp()
	if err := a.execute([]string{"exec", "-t", "--", "c1", "-t"}); err != nil {
		t.Fatal(err)
	}
	if !v.tty || !slices.Equal(v.args, []string{"c1", "-t"}) {
		t.Errorf("-- ends the flags: %+v", *v)
	}
}

func TestCLIErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--bogus", "c"}, "unknown flag: --bogus"},
		{[]string{"run", "-x", "c"}, `unknown shorthand flag: "x"`},
		{[]string{"run", "c", "--bundle"}, "flag needs an argument: --bundle"},
		{[]string{"run", "--preserve-fds", "two", "c"}, `invalid value "two" for --preserve-fds`},
		{[]string{"run"}, "run: accepts 1 arg(s), received 0"},
		{[]string{"run", "a", "b"}, "run: accepts 1 arg(s), received 2"},
		{[]string{"exec"}, "exec: requires at least 1 arg(s)"},
		{[]string{"--root"}, "flag needs an argument: --root"},
		{[]string{"frob"}, `unknown command "frob"`},
		{nil, "no command given"},
	} {
		a, v := testApp()
		err := a.execute(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.args, err, c.want)
		}
		if v.ran != "" {
			t.Errorf("%q: the command ran", c.args)
		}
	}
	a, v := testApp()
	if err := a.execute([]string{"run", "--help"}); err != errHelp || v.ran != "" {
		t.Errorf("--help: %v, ran %q", err, v.ran)
	}
}
