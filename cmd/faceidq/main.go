// Command faceidq is faceidq's one binary: the HTTP API, the worker pool, both in one
// process (serve), the upstream simulator, and the operator's commands. Run
// `faceidq help` for the list; the README's "Commands" and "Configuration" sections
// document every command, flag and environment variable.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal stops the command gracefully; a second one kills it.
	go func() { <-ctx.Done(); stop() }()
	// go-redis reports connection trouble on its own global logger: keep those lines
	// in the JSON log stream (set once here, not in run, which tests call concurrently).
	redis.SetLogger(redisLogger{zerolog.New(os.Stderr).With().Timestamp().Str("component", "redis").Logger()})
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// redisLogger routes go-redis's log lines to zerolog at warn level.
type redisLogger struct{ l zerolog.Logger }

func (r redisLogger) Printf(_ context.Context, format string, v ...any) {
	r.l.Warn().Msg(fmt.Sprintf(format, v...))
}
