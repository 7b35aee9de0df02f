package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/faceidq/faceidq/tasks"
)

// Keys of the test files: no error or output may show them.
const (
	keyA    = "credTestSecretKeyAlpha0001"
	keyB    = "credTestSecretKeyBravo0002"
	keyFile = "credTestSecretKeyFromFile03"
)

// writeFile writes body to a new file of mode perm in dir and returns its path.
func writeFile(t *testing.T, dir, name, body string, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, perm); err != nil { // WriteFile's mode passes the umask
		t.Fatal(err)
	}
	return p
}

func TestLoadCredentials(t *testing.T) {
	dir := t.TempDir()
	keyPath := writeFile(t, dir, "key", keyFile+"\n", 0o600)
	openKey := writeFile(t, dir, "open-key", keyFile, 0o644)
	good := `[{"SecretId":"AKIDcredTestAlpha0001","SecretKey":"` + keyA + `","Endpoint":"faceid.ap-singapore.tencentcloudapi.com","Regions":["ap-singapore","ap-jakarta"]},
	          {"SecretId":"AKIDcredTestBravo0002","SecretKeyFile":"` + keyPath + `"}]`

	t.Run("good file", func(t *testing.T) {
		sets, err := loadCredentials(writeFile(t, dir, "good.json", good, 0o600), "http://127.0.0.1:9000")
		if err != nil {
			t.Fatal(err)
		}
		if len(sets) != 2 {
			t.Fatalf("%d sets, want 2", len(sets))
		}
		a, b := sets[0], sets[1]
		if a.SecretID != "AKIDcredTestAlpha0001" || a.SecretKey != keyA || a.Endpoint != "faceid.ap-singapore.tencentcloudapi.com" ||
			!slices.Equal(a.Regions, []string{"ap-singapore", "ap-jakarta"}) {
			t.Errorf("entry 0 = %+v", a.Regions)
		}
		if b.SecretKey != keyFile || b.Endpoint != "http://127.0.0.1:9000" || len(b.Regions) != 0 {
			t.Errorf("entry 1: key from file %v, endpoint %q (want FACEIDQ_ENDPOINT's), regions %v", b.SecretKey == keyFile, b.Endpoint, b.Regions)
		}
	})

	for _, tt := range []struct {
		name, body string
		perm       os.FileMode
		want       string
	}{
		{"readable by others", good, 0o644, "has mode 0644: it holds secrets, so it must be 0600 or stricter"},
		{"readable by the group", good, 0o640, "has mode 0640"},
		{"not JSON", `{"SecretId":`, 0o600, "not a JSON array of credential sets"},
		{"an object", `{"SecretId":"AKIDx"}`, 0o600, "not an array of credential sets"},
		{"wrong type", `[{"SecretId":"AKIDx","SecretKey":42}]`, 0o600, "SecretKey has the wrong type"},
		{"unknown field", `[{"SecretId":"AKIDx","SecretKey":"` + keyA + `","Secret":"x"}]`, 0o600, `unknown field "Secret"`},
		{"empty", `[]`, 0o600, "holds no credential set"},
		{"no SecretId", `[{"SecretId":"AKIDa","SecretKey":"` + keyA + `"},{"SecretKey":"` + keyB + `"}]`, 0o600, "entry 1: SecretId is required"},
		{"no key", `[{"SecretId":"AKIDa","SecretKey":"` + keyA + `"},{"SecretId":"AKIDb"},{"SecretId":"AKIDc"}]`, 0o600, "entry 1: SecretKey or SecretKeyFile is required"},
		{"both keys", `[{"SecretId":"AKIDa","SecretKey":"` + keyA + `","SecretKeyFile":"` + keyPath + `"}]`, 0o600, "entry 0: give SecretKey or SecretKeyFile, not both"},
		{"key file missing", `[{"SecretId":"AKIDa","SecretKeyFile":"/nonexistent/key"}]`, 0o600, "entry 0: SecretKeyFile: stat /nonexistent/key"},
		{"key file readable by others", `[{"SecretId":"AKIDa","SecretKeyFile":"` + openKey + `"}]`, 0o600, "entry 0: SecretKeyFile: " + openKey + " has mode 0644"},
		{"bad region", `[{"SecretId":"AKIDa","SecretKey":"` + keyA + `"},{"SecretId":"AKIDb","SecretKey":"` + keyB + `"},{"SecretId":"AKIDc","SecretKey":"` + keyB + `","Regions":["mars-1"]}]`, 0o600, `entry 2: Regions: "mars-1" is not a region`},
		{"bad endpoint", `[{"SecretId":"AKIDa","SecretKey":"` + keyA + `","Endpoint":"ftp://x/y"}]`, 0o600, "entry 0: Endpoint"},
		{"key with a newline", `[{"SecretId":"AKIDa","SecretKey":"` + keyA + `\n"}]`, 0o600, "entry 0: SecretID or SecretKey holds whitespace"},
		{"one budget twice", `[{"SecretId":"AKIDa","SecretKey":"` + keyA + `"},{"SecretId":"AKIDa","SecretKey":"` + keyB + `"}]`, 0o600, "entry 1: the same SecretId and Endpoint as entry 0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadCredentials(writeFile(t, t.TempDir(), "creds.json", tt.body, tt.perm), "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			for _, k := range []string{keyA, keyB, keyFile} {
				if strings.Contains(err.Error(), k) {
					t.Fatalf("error %q shows a SecretKey", err)
				}
			}
		})
	}
}

// TestCredentialsUsage: the program stops with one line naming FACEIDQ_CREDENTIALS and
// the entry, never showing a key; the file and TENCENTCLOUD_SECRET_* exclude each other.
func TestCredentialsUsage(t *testing.T) {
	dir := t.TempDir()
	bad := writeFile(t, dir, "bad.json", `[{"SecretId":"AKIDa","SecretKey":"`+keyA+`"},{"SecretId":"AKIDb","SecretKey":"`+keyB+`"},{"SecretId":"AKIDc"}]`, 0o600)
	open := writeFile(t, dir, "open.json", `[{"SecretId":"AKIDa","SecretKey":"`+keyA+`"}]`, 0o644)
	redis := "redis://127.0.0.1:1/0"
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"bad entry", map[string]string{"REDIS_URL": redis, "FACEIDQ_CREDENTIALS": bad}, []string{"worker"},
			"FACEIDQ_CREDENTIALS: entry 2: SecretKey or SecretKeyFile is required"},
		{"open file", map[string]string{"FACEIDQ_CREDENTIALS": open}, []string{"serve"}, "FACEIDQ_CREDENTIALS: " + open + " has mode 0644"},
		{"both ways", map[string]string{"FACEIDQ_CREDENTIALS": bad, "TENCENTCLOUD_SECRET_ID": "AKIDx", "TENCENTCLOUD_SECRET_KEY": keyB},
			[]string{"serve"}, "give the credentials one way"},
		{"simulate", nil, []string{"simulate", "--credentials", bad}, "--credentials: entry 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, getenvFrom(tt.env), &stdout, &stderr)
			if code != exitUsage {
				t.Fatalf("exit %d, want 2; stderr %q", code, stderr.String())
			}
			if got := strings.TrimSuffix(stderr.String(), "\n"); strings.Contains(got, "\n") || !strings.Contains(got, tt.want) {
				t.Fatalf("stderr %q, want one line containing %q", stderr.String(), tt.want)
			}
			for _, k := range []string{keyA, keyB} {
				if strings.Contains(stderr.String()+stdout.String(), k) {
					t.Fatal("the output shows a SecretKey")
				}
			}
		})
	}
}

// TestLoadNodeConfigCredentials: the sets of the file become the worker's, and the
// default concurrency grows with them.
func TestLoadNodeConfigCredentials(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "creds.json", `[{"SecretId":"AKIDcredTestAlpha0001","SecretKey":"`+keyA+`"},
		{"SecretId":"AKIDcredTestBravo0002","SecretKey":"`+keyB+`","Regions":["ap-jakarta"]}]`, 0o600)
	e := &env{stderr: &bytes.Buffer{}}
	c, err := loadNodeConfig("worker", nil, getenvFrom(map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0",
		"FACEIDQ_CREDENTIALS": path, "FACEIDQ_ENDPOINT": "http://127.0.0.1:9000"}), e)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.sets) != 2 || c.upstream != nil || c.sets[1].Endpoint != "http://127.0.0.1:9000" || c.concurrency != 64 {
		t.Fatalf("sets %d, upstream %v, endpoint %q, concurrency %d", len(c.sets), c.upstream, c.sets[1].Endpoint, c.concurrency)
	}
}

// TestServeWithCredentials: `simulate` and `serve` read one FACEIDQ_CREDENTIALS file;
// each job names the (masked) account that minted it, and no log line or answer
// shows a SecretKey.
func TestServeWithCredentials(t *testing.T) {
	path := writeFile(t, t.TempDir(), "creds.json", `[{"SecretId":"AKIDcredTestAlpha0001","SecretKey":"`+keyA+`"},
		{"SecretId":"AKIDcredTestBravo0002","SecretKey":"`+keyB+`","Regions":["ap-singapore"]}]`, 0o600)
	sim := start(t, map[string]string{"FACEIDQ_LISTEN": "127.0.0.1:0", "FACEIDQ_CREDENTIALS": path}, "simulate")
	endpoint := "http://" + sim.addr("simulator")
	p := start(t, map[string]string{"FACEIDQ_CREDENTIALS": path, "FACEIDQ_ENDPOINT": endpoint, "FACEIDQ_LOG_LEVEL": "debug"},
		"serve", "--listen", "127.0.0.1:0")
	c := &client{t: t, base: "http://" + p.addr("api")}
	var out strings.Builder
	seen := map[string]bool{}
	for range 6 {
		r := c.do("POST", "/v1/tokens", okBody, "Prefer", "wait=10")
		j := r.job(t)
		if j.Status != tasks.StatusSucceeded {
			t.Fatalf("POST = %d %s", r.status, r.body)
		}
		g := c.do("GET", "/v1/tokens/"+j.JobId, "")
		if a := g.job(t).Account; a != "AKID…0001" && a != "AKID…0002" {
			t.Fatalf("Account %q, want a masked SecretId of the file", a)
		}
		seen[j.Account] = true
		out.Write(r.body)
		out.Write(g.body)
	}
	t.Logf("accounts used: %v", seen)
	st := (&client{t: t, base: endpoint}).do("GET", "/_sim/stats", "")
	for _, s := range []string{out.String(), p.stderr.String(), sim.stderr.String(), string(st.body)} {
		for _, k := range []string{keyA, keyB} {
			if strings.Contains(s, k) {
				t.Fatalf("a SecretKey shows in %.200s…", s)
			}
		}
	}
}
