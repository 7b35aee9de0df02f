package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// usageError is bad flags or configuration: one line on stderr and exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// redisURLUsage is the usage of REDIS_URL: every form internal/redisconn accepts.
const redisURLUsage = "Redis URL: redis://[user:pass@]host:port/db, rediss:// (TLS), " +
	"unix://[user:pass@]/path/to/redis.sock[?db=N], " +
	"redis-sentinel://[user:pass@]h1:26379,h2:26379/master[/db], " +
	"redis-cluster://[user:pass@]h1:7000,h2:7001 (and rediss-sentinel://, rediss-cluster:// for TLS)"

// option is a setting given by a flag or an environment variable (the flag wins),
// or its default.
type option struct {
	flag, env, def, usage string
	secret                bool   // never shown in errors
	kindName              string // the kind help shows; "" infers it from def (see as)

	fromFlag *string
	value    string
	source   string // "--flag", "ENV" or "default"
}

// name says where the value came from, for error messages.
func (o *option) name() string {
	switch {
	case o.source == "--"+o.flag:
		return o.source
	case o.env != "":
		return o.env + " (--" + o.flag + ")"
	}
	return "--" + o.flag
}

// set reports whether the option was given at all (not its default).
func (o *option) set() bool { return o.source != "default" }

func (o *option) bad(why string) error {
	shown := strconv.Quote(o.value)
	if o.secret {
		shown = "the value"
	}
	return usagef("%s: %s is %s", o.name(), shown, why)
}

func (o *option) duration() (time.Duration, error) {
	d, err := time.ParseDuration(o.value)
	if err != nil || d <= 0 {
		return 0, o.bad("not a positive duration such as 24h or 90m")
	}
	return d, nil
}

func (o *option) positiveFloat() (float64, error) {
	f, err := strconv.ParseFloat(o.value, 64)
	if err != nil || !(f > 0) || f > 1e6 {
		return 0, o.bad("not a positive number")
	}
	return f, nil
}

func (o *option) positiveInt() (int, error) {
	n, err := strconv.Atoi(o.value)
	if err != nil || n <= 0 {
		return 0, o.bad("not a positive whole number")
	}
	return n, nil
}

func (o *option) address() (string, error) {
	if _, port, err := net.SplitHostPort(o.value); err != nil || port == "" {
		return "", o.bad("not a host:port listen address such as 127.0.0.1:8080 or :8080")
	}
	return o.value, nil
}

// list splits a comma-separated value, trimming and dropping empty items.
func (o *option) list() []string {
	var out []string
	for _, s := range strings.Split(o.value, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// flags is a command's flag set with its environment-backed options.
type flags struct {
	fs   *flag.FlagSet
	opts []*option
}

func newFlags(name string) *flags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flags{fs: fs}
}

// opt adds an option backed by env (may be "") with default def.
func (f *flags) opt(flagName, env, def, usage string) *option {
	o := &option{flag: flagName, env: env, def: def, usage: usage}
	help := usage
	if env != "" {
		help += " [env " + env + "]"
	}
	if def != "" {
		help += " (default " + def + ")"
	}
	o.fromFlag = f.fs.String(flagName, "", help)
	f.opts = append(f.opts, o)
	return o
}

// boolFlag adds a boolean flag (no environment variable, default false).
func (f *flags) boolFlag(name, usage string) *bool { return f.fs.Bool(name, false, usage) }

// secretOpt is opt for a value never shown in errors.
func (f *flags) secretOpt(flagName, env, usage string) *option {
	o := f.opt(flagName, env, "", usage)
	o.secret = true
	return o
}

// parse parses args (flags may come before and after positional arguments) and
// resolves every option: flag, else environment, else default. It returns the
// positional arguments; flag.ErrHelp for -h.
func (f *flags) parse(args []string, getenv func(string) string) ([]string, error) {
	var pos []string
	for {
		if err := f.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%v (see faceidq %s -h)", err, f.fs.Name())
		}
		args = f.fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	given := map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	for _, o := range f.opts {
		switch {
		case given[o.flag]:
			o.value, o.source = *o.fromFlag, "--"+o.flag
		case o.env != "" && getenv(o.env) != "":
			o.value, o.source = getenv(o.env), o.env
		default:
			o.value, o.source = o.def, "default"
		}
	}
	return pos, nil
}

// kind is the type of the option's value as help shows it: what its default
// parses as (an option without a default takes text).
func (o *option) kind() string {
	if o.kindName != "" {
		return o.kindName
	}
	if o.def == "" {
		return "string"
	}
	if _, err := strconv.Atoi(o.def); err == nil {
		return "int"
	}
	if _, err := strconv.ParseFloat(o.def, 64); err == nil {
		return "number"
	}
	if _, err := time.ParseDuration(o.def); err == nil {
		return "duration"
	}
	return "string"
}

// as sets the kind help shows, where the default does not say it (a rate of 20 that
// may be 2.5).
func (o *option) as(kind string) *option {
	o.kindName = kind
	return o
}

// flagKind is the kind of the flag named name: its option's kind, or bool for a
// boolFlag.
func (f *flags) flagKind(name string) string {
	for _, o := range f.opts {
		if o.flag == name {
			return o.kind()
		}
	}
	return "bool"
}

// usage writes the command's flags, each with the kind of its value.
func (f *flags) usage(w io.Writer) {
	f.fs.VisitAll(func(fl *flag.Flag) {
		if k := f.flagKind(fl.Name); k != "bool" {
			fmt.Fprintf(w, "  -%s %s\n    \t%s\n", fl.Name, k, fl.Usage)
			return
		}
		fmt.Fprintf(w, "  -%s\n    \t%s\n", fl.Name, fl.Usage)
	})
}

// envVar is an environment variable some command reads, as help shows it.
type envVar struct {
	name, usage, def string
	commands         []string // the commands reading it, in help order
}

// envTable lists every environment variable the commands read, from their option
// tables (the same ones their flags come from), in order of first appearance; the
// usage and default shown are those of the first command reading it.
func envTable() []*envVar {
	var out []*envVar
	seen := map[string]*envVar{}
	for _, c := range commands {
		f := commandFlags(c.name)
		if f == nil || c.run == nil {
			continue
		}
		for _, o := range f.opts {
			if o.env == "" {
				continue
			}
			v := seen[o.env]
			if v == nil {
				v = &envVar{name: o.env, usage: o.usage, def: o.def}
				seen[o.env] = v
				out = append(out, v)
			}
			if !slices.Contains(v.commands, c.name) {
				v.commands = append(v.commands, c.name)
			}
		}
	}
	return out
}

// wrap breaks s into lines of at most width characters (a longer word stays whole).
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(lines, line)
}
