package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestHelpNamesEveryVariable: every environment variable a command reads (asked of
// its option table by parsing with a recording getenv) appears in `faceidq help`,
// and REDIS_URL's help shows every scheme internal/redisconn accepts.
func TestHelpNamesEveryVariable(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"help"}, func(string) string { return "" }, &out, &errb); code != exitOK {
		t.Fatalf("help: exit %d: %s", code, errb.String())
	}
	help := out.String()
	read := map[string]bool{}
	for _, c := range commands {
		f := commandFlags(c.name)
		if f == nil {
			continue
		}
		if _, err := f.parse(nil, func(k string) string { read[k] = true; return "" }); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	if !read["FACEIDQ_CALL_TIMEOUT"] {
		t.Fatal("no command reads FACEIDQ_CALL_TIMEOUT: the recording getenv is broken")
	}
	for k := range read {
		if !strings.Contains(help, k) {
			t.Errorf("faceidq help does not name %s, which the commands read", k)
		}
	}
	for _, scheme := range []string{"redis://", "rediss://", "unix://", "redis-sentinel://", "redis-cluster://"} {
		if !strings.Contains(help, scheme) {
			t.Errorf("faceidq help does not show the %s form of REDIS_URL", scheme)
		}
	}
}

// TestHelpFlagKinds: a flag shows the kind of value it takes, not "string" for all.
func TestHelpFlagKinds(t *testing.T) {
	cases := []struct{ cmd, want string }{
		{"worker", "-concurrency int\n"},
		{"worker", "-call-timeout duration\n"},
		{"worker", "-rate number\n"},
		{"worker", "-redis-url string\n"},
		{"enqueue", "-wait duration\n"},
		{"enqueue", "-links\n"},
		{"simulate", "-latency duration\n"},
	}
	for _, c := range cases {
		var out bytes.Buffer
		run(context.Background(), []string{"help", c.cmd}, func(string) string { return "" }, &out, &out)
		if !strings.Contains(out.String(), "  "+c.want) {
			t.Errorf("faceidq help %s lacks %q:\n%s", c.cmd, c.want, out.String())
		}
	}
}

// TestHelpList: `faceidq help --list` names every command and, for each variable,
// the commands reading it.
func TestHelpList(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"help", "--list"}, func(string) string { return "" }, &out, &out); code != exitOK {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	for _, want := range []string{"command\tworker\n", "command\tapi\n", "env\tFACEIDQ_CALL_TIMEOUT\tserve,worker\n",
		"flag\tworker\tconcurrency\tint\tFACEIDQ_CONCURRENCY\n", "flag\tenqueue\trule-id\tstring\t-\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help --list lacks %q", want)
		}
	}
}
