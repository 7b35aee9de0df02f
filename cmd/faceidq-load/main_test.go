package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunRejectsBadFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"negative ack-replicas", []string{"-ack-replicas", "-1"}, "-ack-replicas"},
		{"ack-replicas with target", []string{"-ack-replicas", "1", "-target", "http://127.0.0.1:1"}, "-ack-replicas"},
		{"zero rate", []string{"-rate", "0"}, "-rate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), tt.args, &stdout, &stderr); code != 2 {
				t.Fatalf("run(%q) = %d, want 2; stderr:\n%s", tt.args, code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not mention %s", stderr.String(), tt.want)
			}
		})
	}
}
