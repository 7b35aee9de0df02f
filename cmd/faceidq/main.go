// Command faceidq is faceidq's one binary: the HTTP API, the worker pool, both in one
// process (serve), the upstream simulator, and the operator's commands. Run
// `faceidq help` for the list; the README's "Commands" and "Configuration" sections
// document every command, flag and environment variable.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal stops the command gracefully; a second one kills it.
	go func() { <-ctx.Done(); stop() }()
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
