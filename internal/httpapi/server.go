package httpapi

import (
	"bytes"
	"log"
	"net/http"
	"time"

	"github.com/rs/zerolog"
)

// Timeouts and limits of NewServer.
const (
	// ReadHeaderTimeout bounds reading a request's headers (slowloris).
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds reading a whole request: a 9 MiB body at about 1.5 Mbit/s.
	ReadTimeout = 60 * time.Second
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout = 120 * time.Second
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes = 64 << 10
)

// NewServer returns an http.Server for h with timeouts sized for 9 MiB uploads and
// waits up to maxWait: WriteTimeout is ReadTimeout + maxWait + 10s, since it runs from
// the end of the headers, through the body and the wait, to the answer. The server's
// own errors (bad TLS handshakes, hijack failures) go to logger at warn level.
func NewServer(h http.Handler, maxWait time.Duration, logger *zerolog.Logger) *http.Server {
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	s := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      ReadTimeout + maxWait + 10*time.Second,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
	}
	if logger != nil {
		s.ErrorLog = log.New(logWriter{*logger}, "", 0)
	}
	return s
}

// logWriter sends net/http's log lines to zerolog.
type logWriter struct{ l zerolog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Warn().Str("component", "http").Msg(string(bytes.TrimSpace(p)))
	return len(p), nil
}
