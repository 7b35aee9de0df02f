package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// Exit codes of run.
const (
	exitOK      = 0
	exitFailure = 1 // the command failed at run time
	exitUsage   = 2 // bad flags, arguments or configuration
)

// env is what a command receives from run.
type env struct {
	name           string // the command
	getenv         func(string) string
	stdout, stderr io.Writer
}

// command is one subcommand.
type command struct {
	name, args, summary string
	run                 func(ctx context.Context, e *env, args []string) error
}

var commands []command

func init() {
	commands = []command{
		{"serve", "", "HTTP API and worker pool in one process (embedded Redis and simulator when unconfigured)", runServe},
		{"api", "", "the HTTP API alone (needs REDIS_URL)", runAPI},
		{"worker", "", "the worker pool alone (needs REDIS_URL); scale out by running many", runWorker},
		{"simulate", "", "the upstream simulator alone, as a real HTTP server", runSimulate},
		{"enqueue", "", "submit one job from flags and print it, or import a campaign (--file users.csv) and feed it with a progress bar", runEnqueue},
		{"status", "<JobId>", "print a job (--wait to wait until it is final)", runStatus},
		{"verify", "<JobId>", "fetch the person's verification result now and print the job (--wait for the answer)", runVerify},
		{"pipeline", "", "print the pipeline switch", runPipeline},
		{"pause", "", "pause the pipeline: workers stop calling the upstream, jobs are still accepted", runPause},
		{"resume", "", "resume the pipeline", runResume},
		{"batch", "status|list|pause|resume|weight|cancel|rerun [NAME|ID] [WEIGHT]", "campaigns: progress (--watch draws it), list, pause or resume feeding, set a campaign's share of the batch lane, cancel the jobs not started, re-run failed ones", runBatch},
		{"export", "--batch NAME|ID", "stream every job (or link) of a campaign with its row key, as NDJSON or CSV", runExport},
		{"webhook", "failed | replay JOBID|--all", "list the exhausted webhook deliveries, or deliver them again", runWebhook},
		{"version", "", "print the version", runVersion},
		{"help", "[command]", "this help, or a command's flags", nil},
	}
}

// run is the whole program: main only supplies the process's context, arguments
// (without the program name), environment and output. It returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "faceidq: no command given (see faceidq help)")
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		return help(rest, stdout, stderr)
	case "-version", "--version":
		name = "version"
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "faceidq: unknown command %q (see faceidq help)\n", name)
		return exitUsage
	}
	e := &env{name: name, getenv: getenv, stdout: stdout, stderr: stderr}
	err := cmd.run(ctx, e, rest)
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		printCommandHelp(stdout, cmd)
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "faceidq %s: %s\n", name, oneLine(ue.msg))
		return exitUsage
	}
	fmt.Fprintf(stderr, "faceidq %s: %s\n", name, oneLine(err.Error()))
	return exitFailure
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name && commands[i].run != nil {
			return &commands[i]
		}
	}
	return nil
}

func help(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "--list" {
		printList(stdout)
		return exitOK
	}
	if len(args) > 0 {
		if cmd := lookup(args[0]); cmd != nil {
			printCommandHelp(stdout, cmd)
			return exitOK
		}
		fmt.Fprintf(stderr, "faceidq help: unknown command %q\n", args[0])
		return exitUsage
	}
	fmt.Fprint(stdout, `faceidq turns Tencent Cloud FaceID's ApplyWebVerificationBizTokenIntl into a
queue-driven service: an HTTP API enqueues token requests into Redis, workers call
the upstream under one global rate limit and write results back.

Usage: faceidq <command> [flags] [arguments]   (faceidq <command> -h for its flags)

Commands:
`)
	for _, c := range commands {
		use := strings.TrimSpace(c.name + " " + c.args)
		if len(use) > 22 {
			fmt.Fprintf(stdout, "  %s\n  %-22s %s\n", use, "", c.summary)
			continue
		}
		fmt.Fprintf(stdout, "  %-22s %s\n", use, c.summary)
	}
	fmt.Fprint(stdout, "\nConfiguration (every variable is also a flag; a flag wins over the environment):\n")
	for _, v := range envTable() {
		text := v.usage
		if v.def != "" {
			text += " (default " + v.def + ")"
		}
		for i, l := range wrap(text, 52) {
			name := ""
			if i == 0 {
				name = v.name
			}
			if len(name) > 26 {
				fmt.Fprintf(stdout, "  %s\n", name)
				name = ""
			}
			fmt.Fprintf(stdout, "  %-26s %s\n", name, l)
		}
	}
	fmt.Fprint(stdout, `
Exit codes: 0 success, 1 failure, 2 bad flags, arguments or configuration.
`)
	return exitOK
}

// printList is `faceidq help --list`: the commands, environment variables and flags
// for programs (the deploy tests), tab-separated, one a line:
//
//	command	<name>
//	env	<NAME>	<command>,<command>…
//	flag	<command>	<flag>	<kind>	<ENV or ->
func printList(w io.Writer) {
	for _, c := range commands {
		fmt.Fprintf(w, "command\t%s\n", c.name)
	}
	for _, v := range envTable() {
		fmt.Fprintf(w, "env\t%s\t%s\n", v.name, strings.Join(v.commands, ","))
	}
	for _, c := range commands {
		f := commandFlags(c.name)
		if f == nil || c.run == nil {
			continue
		}
		f.fs.VisitAll(func(fl *flag.Flag) {
			env := "-"
			for _, o := range f.opts {
				if o.flag == fl.Name && o.env != "" {
					env = o.env
				}
			}
			fmt.Fprintf(w, "flag\t%s\t%s\t%s\t%s\n", c.name, fl.Name, f.flagKind(fl.Name), env)
		})
	}
}

func printCommandHelp(w io.Writer, cmd *command) {
	fmt.Fprintf(w, "Usage: faceidq %s [flags] %s\n\n%s.\n\nFlags:\n", cmd.name, cmd.args, cmd.summary)
	// Each command builds its flags when it runs; -h makes it stop right after.
	f := commandFlags(cmd.name)
	if f != nil {
		f.usage(w)
	}
}

// commandFlags returns the flag set of a command, for help.
func commandFlags(name string) *flags {
	switch name {
	case "serve", "api", "worker":
		f, _ := nodeFlags(name)
		return f
	case "simulate":
		f, _ := simulateFlags()
		return f
	case "enqueue":
		f, _ := enqueueFlags()
		return f
	case "status":
		f, _ := statusFlags()
		return f
	case "verify":
		f, _ := verifyFlags()
		return f
	case "pipeline", "pause", "resume":
		f, _ := switchFlags(name)
		return f
	case "batch":
		f, _ := batchFlags()
		return f
	case "export":
		f, _ := exportFlags()
		return f
	case "webhook":
		f, _ := webhookFlags()
		return f
	case "version":
		return newFlags(name)
	}
	return nil
}

// logOpts are the logging options every command has.
type logOpts struct{ level, format *option }

func addLog(f *flags) *logOpts {
	return &logOpts{
		level:  f.opt("log-level", "FACEIDQ_LOG_LEVEL", "info", "log level: debug, info, warn or error"),
		format: f.opt("log-format", "FACEIDQ_LOG_FORMAT", "auto", "log format: json, console, or auto (console when stderr is a terminal)"),
	}
}

// logger returns the zerolog logger the options describe, writing to w.
func (o *logOpts) logger(w io.Writer) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(strings.ToLower(o.level.value))
	if err != nil || o.level.value == "" {
		return zerolog.Logger{}, o.level.bad("not one of debug, info, warn, error")
	}
	console := false
	switch strings.ToLower(o.format.value) {
	case "json":
	case "console":
		console = true
	case "auto":
		console = isTerminal(w)
	default:
		return zerolog.Logger{}, o.format.bad("not one of json, console, auto")
	}
	if console {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !isTerminal(w)}
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// listenHook, when set in the context, is told every address the program binds, so
// that in-process tests can find ports chosen by ":0".
type listenHook func(name, addr string)

type listenHookKey struct{}

// announce logs a bound address and tells the hook.
func announce(ctx context.Context, log zerolog.Logger, name, addr, msg string) {
	log.Info().Str("listener", name).Str("addr", addr).Msg(msg)
	if h, ok := ctx.Value(listenHookKey{}).(listenHook); ok {
		h(name, addr)
	}
}

// version is set with -ldflags "-X main.version=…"; otherwise the module version.
var version = ""

func runVersion(ctx context.Context, e *env, args []string) error {
	f := newFlags("version")
	if pos, err := f.parse(args, e.getenv); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("takes no arguments")
	}
	v := version
	if v == "" {
		v = "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	fmt.Fprintf(e.stdout, "faceidq %s %s %s/%s\n", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
