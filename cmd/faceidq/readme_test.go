package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeGetStarted reads the README as a newcomer does: the binary's install
// step comes before the first `faceidq …` command, and the REDIS_URL it gives for
// reaching `serve`'s embedded Redis is the program's default address.
func TestReadmeGetStarted(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	install := regexp.MustCompile(`(?m)^go (install \./cmd/faceidq|build -o faceidq \./cmd/faceidq)\b`).FindStringIndex(readme)
	first := regexp.MustCompile(`(?m)^(\$ )?faceidq [a-z]`).FindStringIndex(readme)
	switch {
	case first == nil:
		t.Fatal("the README runs no faceidq command")
	case install == nil:
		t.Fatal("the README never says how to get the faceidq binary (go install ./cmd/faceidq or go build -o faceidq ./cmd/faceidq)")
	case install[0] > first[0]:
		t.Fatalf("the README runs %q before saying how to install faceidq", strings.SplitN(readme[first[0]:], "\n", 2)[0])
	}
	if url := "REDIS_URL=redis://" + defaultEmbeddedRedis + "/0"; !strings.Contains(readme, url) {
		t.Errorf("the README does not give %s, the REDIS_URL of serve's embedded Redis", url)
	}
	for _, flag := range []string{"--embedded-redis-listen", "FACEIDQ_EMBEDDED_REDIS_LISTEN", "--simulator-seed", "FACEIDQ_SIMULATOR_SEED"} {
		if !strings.Contains(readme, flag) {
			t.Errorf("the README does not document %s", flag)
		}
	}
}
