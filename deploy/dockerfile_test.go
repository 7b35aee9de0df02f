package deploy_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// dockerfile is a parsed Dockerfile: its instructions, continuation lines joined.
type dockerfile struct {
	instr []instruction
}

type instruction struct {
	cmd   string // upper case: FROM, RUN, …
	args  string
	stage int // index of the FROM it belongs to (-1 before the first)
}

func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var df dockerfile
	stage := -1
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		df.instr = append(df.instr, instruction{cmd: cmd, args: strings.TrimSpace(args), stage: stage})
	}
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return df
}

func (df dockerfile) all(cmd string) []instruction {
	var out []instruction
	for _, i := range df.instr {
		if i.cmd == cmd {
			out = append(out, i)
		}
	}
	return out
}

func (df dockerfile) last(cmd string) (instruction, bool) {
	a := df.all(cmd)
	if len(a) == 0 {
		return instruction{}, false
	}
	return a[len(a)-1], true
}

var goBuildRE = regexp.MustCompile(`CGO_ENABLED=0 go build (.*) -o (\S+) (\./cmd/\S+)$`)

// splitArgs splits a shell word list with double quotes (enough for this Dockerfile).
func splitArgs(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, has := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote, has = !inQuote, true
		case r == ' ' && !inQuote:
			if has {
				out = append(out, cur.String())
				cur.Reset()
				has = false
			}
		default:
			cur.WriteRune(r)
			has = true
		}
	}
	if has {
		out = append(out, cur.String())
	}
	return out
}

// goVersion parses "1.26.8" into comparable parts.
func goVersion(t *testing.T, v string) [3]int {
	t.Helper()
	var out [3]int
	for i, p := range strings.SplitN(v, ".", 3) {
		n, err := strconv.Atoi(p)
		if err != nil {
			t.Fatalf("bad Go version %q", v)
		}
		out[i] = n
	}
	return out
}

func TestDockerfile(t *testing.T) {
	df := parseDockerfile(t)
	froms := df.all("FROM")
	if len(froms) < 2 {
		t.Fatalf("%d stages, want a multi-stage build", len(froms))
	}
	final := len(froms) - 1

	t.Run("go version", func(t *testing.T) {
		arg := ""
		for _, a := range df.all("ARG") {
			if v, ok := strings.CutPrefix(a.args, "GO_VERSION="); ok {
				arg = v
			}
		}
		if arg == "" || !strings.Contains(froms[0].args, "golang:${GO_VERSION}") {
			t.Fatalf("the build stage is not golang:${GO_VERSION} with a default (FROM %s, ARG %q)", froms[0].args, arg)
		}
		mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
		if m == nil {
			t.Fatal("go.mod has no go line")
		}
		want, got := goVersion(t, string(m[1])), goVersion(t, arg)
		if slices.Compare(got[:], want[:]) < 0 {
			t.Errorf("GO_VERSION %s is older than go.mod's go %s", arg, m[1])
		}
	})

	t.Run("final stage", func(t *testing.T) {
		base := froms[final].args
		if !strings.HasPrefix(base, "gcr.io/distroless/static") && base != "scratch" {
			t.Errorf("final stage FROM %s, want distroless static or scratch", base)
		}
		user, ok := df.last("USER")
		if !ok || user.stage != final {
			t.Fatal("the final stage sets no USER")
		}
		if u, _, _ := strings.Cut(user.args, ":"); u == "root" || u == "0" {
			t.Errorf("USER %s runs as root", user.args)
		}
		ep, ok := df.last("ENTRYPOINT")
		if !ok {
			t.Fatal("no ENTRYPOINT")
		}
		copied := false
		for _, c := range df.all("COPY") {
			if c.stage == final && strings.Contains(ep.args, `"`+lastField(c.args)+`"`) {
				copied = true
			}
		}
		if !copied {
			t.Errorf("ENTRYPOINT %s is not the binary the final stage copies", ep.args)
		}
		var exposed []string
		for _, e := range df.all("EXPOSE") {
			exposed = append(exposed, strings.Fields(e.args)...)
		}
		for _, p := range []string{"8080", "9090"} {
			if !slices.Contains(exposed, p) {
				t.Errorf("EXPOSE %v lacks %s", exposed, p)
			}
		}
	})

	t.Run("healthcheck", func(t *testing.T) {
		hc, ok := df.last("HEALTHCHECK")
		if !ok {
			t.Fatal("no HEALTHCHECK instruction (say NONE when the image cannot probe itself)")
		}
		// distroless has no shell: a HEALTHCHECK must run the binary itself, in exec form.
		if hc.args == "NONE" {
			if hasCommand(t, "healthcheck") {
				t.Error("cmd/faceidq has a healthcheck command: use it in HEALTHCHECK")
			}
			return
		}
		if !strings.Contains(hc.args, `CMD ["/usr/local/bin/faceidq", "healthcheck"`) {
			t.Errorf("HEALTHCHECK %s: want the exec form of faceidq healthcheck", hc.args)
		}
	})

	t.Run("build context", func(t *testing.T) {
		// Every package and embedded file the binary needs passes
		// deploy/Dockerfile.dockerignore.
		ignore := dockerignore(t)
		abs, err := filepath.Abs(root)
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("go", "list", "-C", root, "-deps",
			"-f", `{{if .Module}}{{if .Module.Main}}{{.Dir}}|{{join .GoFiles ","}}|{{join .EmbedFiles ","}}{{end}}{{end}}`, "./cmd/faceidq").Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		n := 0
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			parts := strings.Split(line, "|")
			rel, err := filepath.Rel(abs, parts[0])
			if err != nil {
				t.Fatal(err)
			}
			for _, list := range parts[1:] {
				for _, f := range strings.Split(list, ",") {
					if f == "" {
						continue
					}
					n++
					path := filepath.ToSlash(filepath.Join(rel, f))
					if pat := ignored(ignore, path); pat != "" {
						t.Errorf("%s is needed by the build but excluded by %q in Dockerfile.dockerignore", path, pat)
					}
				}
			}
		}
		if n < 10 {
			t.Fatalf("go list found only %d files", n)
		}
		for _, f := range []string{"go.mod", "go.sum"} {
			if pat := ignored(ignore, f); pat != "" {
				t.Errorf("%s excluded by %q", f, pat)
			}
		}
	})

	t.Run("go build", func(t *testing.T) {
		flags, pkg := dockerBuildArgs(t)
		if !slices.Contains(flags, "-trimpath") || !slices.Contains(flags, "-s -w") {
			t.Errorf("go build flags %q, want -trimpath -ldflags \"-s -w\"", flags)
		}
		if pkg != "./cmd/faceidq" {
			t.Errorf("builds %s, want ./cmd/faceidq", pkg)
		}
		out := binary(t) // the same command, run here
		f, err := elf.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("the binary is dynamically linked (%v): it would not run on distroless/static", p.Type)
			}
		}
		if syms, err := f.Symbols(); err == nil && len(syms) > 0 {
			t.Errorf("the binary has %d symbols; -s should strip them", len(syms))
		}
		if help, err := exec.Command(out, "help").CombinedOutput(); err != nil {
			t.Errorf("faceidq help: %v\n%s", err, help)
		}
	})
}

// dockerBuildArgs returns the flags and package of the Dockerfile's go build command.
func dockerBuildArgs(t *testing.T) (flags []string, pkg string) {
	t.Helper()
	var m []string
	for _, r := range parseDockerfile(t).all("RUN") {
		if mm := goBuildRE.FindStringSubmatch(r.args); mm != nil {
			m = mm
		}
	}
	if m == nil {
		t.Fatal("no `CGO_ENABLED=0 go build … -o … ./cmd/…` RUN line in deploy/Dockerfile")
	}
	return splitArgs(m[1]), m[3]
}

// dockerignore returns the patterns of deploy/Dockerfile.dockerignore.
func dockerignore(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "deploy", "Dockerfile.dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var pats []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			if strings.HasPrefix(l, "!") {
				t.Fatalf("exception patterns (%s) are not handled by this test", l)
			}
			pats = append(pats, strings.TrimPrefix(l, "/"))
		}
	}
	return pats
}

// ignored returns the pattern that excludes path (slash-separated, relative to the
// context root), or "". A pattern excludes a path it matches or a directory of it;
// "**/" matches any number of directories, as in .dockerignore.
func ignored(pats []string, path string) string {
	parts := strings.Split(path, "/")
	for _, p := range pats {
		for i := 1; i <= len(parts); i++ {
			prefix := strings.Join(parts[:i], "/")
			if ok, _ := filepath.Match(p, prefix); ok {
				return p
			}
			if rest, ok := strings.CutPrefix(p, "**/"); ok {
				if m, _ := filepath.Match(rest, parts[i-1]); m {
					return p
				}
			}
		}
	}
	return ""
}

func lastField(s string) string {
	f := strings.Fields(s)
	return f[len(f)-1]
}
