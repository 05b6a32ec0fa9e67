package main

// A command line in runc's dialect, without a CLI library: the runtime
// runs once per container operation, and its binary's size is its memory
// (docs/architecture.md, Speed).
//
// Flags: --name value, --name=value, -n value, -nvalue, -n=value, and
// several boolean shorthands at once (-dt). Global flags may come before
// the command or among its own flags; "--" ends the flags. A command's
// flags and arguments mix unless it parses flags only up to its first
// argument (exec, ps: what follows is the container's command line).

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// command is one subcommand.
type command struct {
	use, short string
	aliases    []string
	args       func([]string) error
	run        func(cmd *command, args []string) error
	flags      flagSet
}

func (c *command) Flags() *flagSet { return &c.flags }

func (c *command) name() string { return strings.Fields(c.use)[0] }

// errHelp ends a run that printed help.
var errHelp = errors.New("help")

type flagSet struct {
	defs           []*flagDef
	changed        map[string]bool
	stopAtFirstArg bool
}

type flagDef struct {
	long, short, usage, def string
	boolean                 bool
	set                     func(string) error
}

// SetInterspersed(false) makes flag parsing stop at the first argument.
func (f *flagSet) SetInterspersed(on bool) { f.stopAtFirstArg = !on }

// Changed reports whether the flag was given.
func (f *flagSet) Changed(long string) bool { return f.changed[long] }

func (f *flagSet) add(long, short, usage, def string, boolean bool, set func(string) error) {
	f.defs = append(f.defs, &flagDef{long: long, short: short, usage: usage, def: def, boolean: boolean, set: set})
}

func (f *flagSet) StringVar(p *string, long, def, usage string) {
	f.StringVarP(p, long, "", def, usage)
}
func (f *flagSet) StringVarP(p *string, long, short, def, usage string) {
	*p = def
	f.add(long, short, usage, def, false, func(s string) error { *p = s; return nil })
}

func (f *flagSet) BoolVar(p *bool, long string, def bool, usage string) {
	f.BoolVarP(p, long, "", def, usage)
}
func (f *flagSet) BoolVarP(p *bool, long, short string, def bool, usage string) {
	*p = def
	f.add(long, short, usage, "", true, func(s string) error {
		v, err := strconv.ParseBool(s)
		*p = v
		return err
	})
}

func (f *flagSet) IntVar(p *int, long string, def int, usage string) {
	*p = def
	f.add(long, "", usage, strconv.Itoa(def), false, func(s string) error {
		v, err := strconv.Atoi(s)
		*p = v
		return err
	})
}

func (f *flagSet) Int64Var(p *int64, long string, def int64, usage string) {
	*p = def
	f.add(long, "", usage, strconv.FormatInt(def, 10), false, func(s string) error {
		v, err := strconv.ParseInt(s, 0, 64)
		*p = v
		return err
	})
}

func (f *flagSet) Uint64Var(p *uint64, long string, def uint64, usage string) {
	*p = def
	f.add(long, "", usage, strconv.FormatUint(def, 10), false, func(s string) error {
		v, err := strconv.ParseUint(s, 0, 64)
		*p = v
		return err
	})
}

func (f *flagSet) Uint16Var(p *uint16, long string, def uint16, usage string) {
	*p = def
	f.add(long, "", usage, strconv.FormatUint(uint64(def), 10), false, func(s string) error {
		v, err := strconv.ParseUint(s, 0, 16)
		*p = uint16(v)
		return err
	})
}

func (f *flagSet) DurationVar(p *time.Duration, long string, def time.Duration, usage string) {
	*p = def
	f.add(long, "", usage, def.String(), false, func(s string) error {
		v, err := time.ParseDuration(s)
		*p = v
		return err
	})
}

// StringArrayVarP collects every use of a repeated flag.
func (f *flagSet) StringArrayVarP(p *[]string, long, short string, def []string, usage string) {
	*p = def
	f.add(long, short, usage, "", false, func(s string) error { *p = append(*p, s); return nil })
}

// IntSliceVarP collects integers from repeated uses, each comma-separated.
func (f *flagSet) IntSliceVarP(p *[]int, long, short string, def []int, usage string) {
	*p = def
	f.add(long, short, usage, "", false, func(s string) error {
		for _, part := range strings.Split(s, ",") {
			v, err := strconv.Atoi(strings.TrimSpace(part))
			if err != nil {
				return err
			}
			*p = append(*p, v)
		}
		return nil
	})
}

func (f *flagSet) lookup(name string, short bool) *flagDef {
	for _, d := range f.defs {
		if (!short && d.long == name) || (short && d.short != "" && d.short == name) {
			return d
		}
	}
	return nil
}

// parse sets the flags in args from sets (searched in order) and returns
// the arguments. help is set on -h/--help.
func parse(args []string, stopAtFirstArg bool, sets ...*flagSet) (rest []string, help bool, err error) {
	find := func(name string, short bool) *flagDef {
		for _, s := range sets {
			if d := s.lookup(name, short); d != nil {
				if s.changed == nil {
					s.changed = map[string]bool{}
				}
				s.changed[d.long] = true
				return d
			}
		}
		return nil
	}
	set := func(d *flagDef, shown, val string) error {
		if err := d.set(val); err != nil {
			return fmt.Errorf("invalid value %q for %s: %v", val, shown, err)
		}
		return nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(rest, args[i+1:]...), false, nil
		case a == "-h" || a == "--help":
			return nil, true, nil
		case strings.HasPrefix(a, "--"):
			name, val, hasVal := strings.Cut(a[2:], "=")
			d := find(name, false)
			if d == nil {
				return nil, false, fmt.Errorf("unknown flag: --%s", name)
			}
			switch {
			case hasVal:
			case d.boolean:
				val = "true"
			case i+1 < len(args):
				i++
				val = args[i]
			default:
				return nil, false, fmt.Errorf("flag needs an argument: --%s", name)
			}
			if err := set(d, "--"+name, val); err != nil {
				return nil, false, err
			}
		case len(a) > 1 && a[0] == '-':
			// One or more shorthands; a non-boolean one takes the rest.
			for j := 1; j < len(a); j++ {
				c := a[j : j+1]
				d := find(c, true)
				if d == nil {
					return nil, false, fmt.Errorf("unknown shorthand flag: %q in %s", c, a)
				}
				if d.boolean {
					val := "true"
					if strings.HasPrefix(a[j+1:], "=") {
						val, j = a[j+2:], len(a)
					}
					if err := set(d, "-"+c, val); err != nil {
						return nil, false, err
					}
					continue
				}
				val := strings.TrimPrefix(a[j+1:], "=")
				if j+1 == len(a) {
					if i+1 == len(args) {
						return nil, false, fmt.Errorf("flag needs an argument: -%s", c)
					}
					i++
					val = args[i]
				}
				if err := set(d, "-"+c, val); err != nil {
					return nil, false, err
				}
				break
			}
		default:
			if stopAtFirstArg {
				return append(rest, args[i:]...), false, nil
			}
			rest = append(rest, a)
		}
	}
	return rest, false, nil
}

// app is the runtime's command line: global flags, then a command.
type app struct {
	name, short, version string
	global               flagSet
	commands             []*command
	// before runs after parsing, before the command.
	before func() error
}

func (a *app) find(name string) *command {
	for _, c := range a.commands {
		if c.name() == name || slices.Contains(c.aliases, name) {
			return c
		}
	}
	return nil
}

// execute runs the command args name; errHelp after printing help.
func (a *app) execute(args []string) error {
	// Global flags (and --version) up to the command's name.
	var version bool
	var top flagSet
	top.BoolVarP(&version, "version", "v", false, "print the version")
	rest, help, err := parse(args, true, &a.global, &top)
	switch {
	case help:
		a.usage(os.Stdout)
		return errHelp
	case err != nil:
		return err
	case version:
		fmt.Print(a.versionText())
		return nil
	case len(rest) == 0:
		a.usage(os.Stderr)
		return errors.New("no command given")
	}
	if rest[0] == "help" || rest[0] == "h" {
		// runc's help command: the app's help, or one command's.
		if len(rest) == 1 {
			a.usage(os.Stdout)
			return errHelp
		}
		cmd := a.find(rest[1])
		if cmd == nil {
			return fmt.Errorf("no help topic for %q", rest[1])
		}
		cmd.usage(os.Stdout, a)
		return errHelp
	}
	cmd := a.find(rest[0])
	if cmd == nil {
		return fmt.Errorf("unknown command %q for %q", rest[0], a.name)
	}
	rest, help, err = parse(rest[1:], cmd.flags.stopAtFirstArg, &cmd.flags, &a.global)
	if help {
		cmd.usage(os.Stdout, a)
		return errHelp
	}
	if err != nil {
		return err
	}
	if cmd.args != nil {
		if err := cmd.args(rest); err != nil {
			return fmt.Errorf("%s: %w", cmd.name(), err)
		}
	}
	if a.before != nil {
		if err := a.before(); err != nil {
			return err
		}
	}
	return cmd.run(cmd, rest)
}

// versionText is --version's output in runc's form, which engines parse:
// "NAME version V", then commit, spec and go lines.
func (a *app) versionText() string {
	commit := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	return fmt.Sprintf("%s version %s\ncommit: %s\nspec: %s\ngo: %s\n", a.name, a.version, commit, specs.Version, runtime.Version())
}

// usage prints the app's help in runc's layout (NAME, USAGE, VERSION,
// COMMANDS, GLOBAL OPTIONS), which people and scripts know.
func (a *app) usage(w io.Writer) {
	fmt.Fprintf(w, "NAME:\n   %s - %s\n\nUSAGE:\n   %s [global options] command [command options] [arguments...]\n\nVERSION:\n   %s\n\n",
		a.name, a.short, a.name, strings.TrimSuffix(a.versionText(), "\n"))
	fmt.Fprintln(w, "COMMANDS:")
	rows := [][2]string{}
	for _, c := range a.commands {
		rows = append(rows, [2]string{strings.Join(append([]string{c.name()}, c.aliases...), ", "), c.short})
	}
	rows = append(rows, [2]string{"help, h", "Shows a list of commands or help for one command"})
	table(w, rows)
	fmt.Fprintln(w, "\nGLOBAL OPTIONS:")
	global := a.global.rows()
	global = append(global, [2]string{"--help, -h", "show help"}, [2]string{"--version, -v", "print the version"})
	table(w, global)
}

// usage prints one command's help in runc's layout (NAME, USAGE, OPTIONS).
func (c *command) usage(w io.Writer, a *app) {
	use := strings.Replace(c.use, "[flags]", "[command options]", 1)
	fmt.Fprintf(w, "NAME:\n   %s %s - %s\n\nUSAGE:\n   %s %s\n", a.name, c.name(), c.short, a.name, use)
	if len(c.aliases) > 0 {
		fmt.Fprintf(w, "\nALIASES:\n   %s\n", strings.Join(c.aliases, ", "))
	}
	if len(c.flags.defs) > 0 {
		fmt.Fprintln(w, "\nOPTIONS:")
		table(w, c.flags.rows())
	}
}

// rows lists the flags as runc shows them: "--name value, -n value" and
// the usage with its default.
func (f *flagSet) rows() [][2]string {
	var out [][2]string
	for _, d := range f.defs {
		name := "--" + d.long
		if !d.boolean {
			name += " value"
		}
		if d.short != "" {
			name += ", -" + d.short
			if !d.boolean {
				name += " value"
			}
		}
		usage := d.usage
		if d.def != "" && d.def != "0" {
			usage += fmt.Sprintf(" (default: %q)", d.def)
		}
		out = append(out, [2]string{name, usage})
	}
	return out
}

// table prints rows as two aligned columns, indented by three spaces.
func table(w io.Writer, rows [][2]string) {
	width := 0
	for _, r := range rows {
		width = max(width, len(r[0]))
	}
	for _, r := range rows {
		fmt.Fprintf(w, "   %-*s  %s\n", width, r[0], r[1])
	}
}

func exactArgs(n int) func([]string) error {
	return func(args []string) error {
		if len(args) != n {
			return fmt.Errorf("accepts %d arg(s), received %d", n, len(args))
		}
		return nil
	}
}

func minimumNArgs(n int) func([]string) error {
	return func(args []string) error {
		if len(args) < n {
			return fmt.Errorf("requires at least %d arg(s), only received %d", n, len(args))
		}
		return nil
	}
}

func rangeArgs(lo, hi int) func([]string) error {
	return func(args []string) error {
		if len(args) < lo || len(args) > hi {
			return fmt.Errorf("accepts between %d and %d arg(s), received %d", lo, hi, len(args))
		}
		return nil
	}
}

func noArgs(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("accepts no arguments, received %d", len(args))
	}
	return nil
}
