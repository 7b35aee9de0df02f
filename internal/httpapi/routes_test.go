package httpapi

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestREADMEListsEveryRoute checks the README's route table against the route table:
// the same routes, in the same order, nothing more.
func TestREADMEListsEveryRoute(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## HTTP API\n")
	if !ok {
		t.Fatal("README has no HTTP API section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	row := regexp.MustCompile("(?m)^\\| `([A-Z]+) (/[^` ]*)` \\|")
	var readme []string
	for _, m := range row.FindAllStringSubmatch(section, -1) {
		readme = append(readme, m[1]+" "+m[2])
	}
	var code []string
	for _, rt := range Routes() {
		code = append(code, rt.Method+" "+rt.Path)
	}
	if !slices.Equal(readme, code) {
		t.Fatalf("README routes:\n%s\nroute table:\n%s", strings.Join(readme, "\n"), strings.Join(code, "\n"))
	}
}
