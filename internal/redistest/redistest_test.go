package redistest

import (
	"context"
	"testing"
)

func TestRealServerRestartKeepsAOF(t *testing.T) {
	s := Start(t, Options{Args: []string{"--appendonly", "yes", "--appendfsync", "always"}})
	ctx := context.Background()
	c := s.Client(t)
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	s.Restart()
	got, err := c.Get(ctx, "k").Result()
	if err != nil || got != "v" {
		t.Fatalf("after kill -9 and restart: got %q, %v; want v", got, err)
	}
}

func TestMini(t *testing.T) {
	m := Mini(t)
	if err := m.Set("a", "b"); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.Get("a"); got != "b" {
		t.Fatalf("got %q", got)
	}
}
