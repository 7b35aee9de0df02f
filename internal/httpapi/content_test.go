package httpapi

import (
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestContentTypes: a JSON route takes only JSON content types (a web page can send
// text/plain, form and header-less bodies cross-site), naming the accepted types;
// a route without a body takes none or JSON; a refused request creates nothing.
func TestContentTypes(t *testing.T) {
	_, b := setup(t, nil)
	tests := []struct {
		name, method, path, ctype, body string
		want                            int
	}{
		{"json", "POST", "/v1/tokens", "application/json", okBody, 202},
		{"json with charset", "POST", "/v1/tokens", "application/json; charset=utf-8", okBody, 202},
		{"upper case", "POST", "/v1/tokens", "Application/JSON", okBody, 202},
		{"a +json type", "POST", "/v1/tokens", "application/vnd.faceidq+json", okBody, 202},
		{"text/plain", "POST", "/v1/tokens", "text/plain", okBody, 415},
		{"text/plain with charset", "POST", "/v1/tokens", "text/plain;charset=UTF-8", okBody, 415},
		{"form", "POST", "/v1/tokens", "application/x-www-form-urlencoded", okBody, 415},
		{"multipart", "POST", "/v1/tokens", "multipart/form-data; boundary=x", okBody, 415},
		{"missing", "POST", "/v1/tokens", "", okBody, 415},
		{"+json alone", "POST", "/v1/tokens", "application/+json", okBody, 415},
		{"jsonx", "POST", "/v1/tokens", "application/jsonx", okBody, 415},
		{"pause without a body", "POST", "/v1/pipeline/pause", "", "", 200},
		{"resume with JSON", "POST", "/v1/pipeline/resume", "application/json", "{}", 200},
		{"pause with a form", "POST", "/v1/pipeline/pause", "application/x-www-form-urlencoded", "", 415},
		{"pause with text", "POST", "/v1/pipeline/pause", "text/plain", "x", 415},
		{"pause with a body and no type", "POST", "/v1/pipeline/pause", "", "x", 415},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, b.srv.URL+tt.path, strings.NewReader(tt.body))
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			resp, err := b.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("%s %s (%q) = %d, want %d", tt.method, tt.path, tt.ctype, resp.StatusCode, tt.want)
			}
			if tt.want == 415 {
				var a answer
				a.status, a.header = resp.StatusCode, resp.Header
				a.body = readAll(resp)
				e := a.envelope(t)
				if e.Error.Code != "UnsupportedMediaType" || !strings.HasPrefix(e.Error.Message, "Content-Type: ") ||
					!strings.Contains(e.Error.Message, "application/json") {
					t.Fatalf("415 answer %s", a.body)
				}
			}
		})
	}
	if n := b.rdb.DBSize(t.Context()).Val(); n == 0 {
		t.Fatal("the accepted requests created nothing")
	}
	keysBefore := b.rdb.DBSize(t.Context()).Val()
	b.do(t, "POST", "/v1/tokens", okBody, "Content-Type", "text/plain")
	if n := b.rdb.DBSize(t.Context()).Val(); n != keysBefore {
		t.Fatalf("a refused request changed Redis: %d keys, was %d", n, keysBefore)
	}
}

func TestImportContentTypes(t *testing.T) {
	_, b, _ := campaignSetup(t, nil)
	csv := "redirect_url\nhttps://example.com/a\n"
	ndjson := `{"RedirectURL":"https://example.com/a"}` + "\n"
	for _, tt := range []struct {
		name, ctype, body string
		want              int
	}{
		{"csv", "text/csv", csv, 202},
		{"csv with charset", "text/csv; charset=utf-8", csv, 202},
		{"ndjson", "application/x-ndjson", ndjson, 202},
		{"csv without a type", "", csv, 415},
		{"ndjson as json", "application/json", ndjson, 415},
		{"csv as text", "text/plain", csv, 415},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := len(b.do(t, "GET", "/v1/batches", "").body)
			var h []string
			if tt.ctype != "" {
				h = []string{"Content-Type", tt.ctype}
			}
			r := b.do(t, "POST", "/v1/batches", tt.body, h...)
			if r.status != tt.want {
				t.Fatalf("POST /v1/batches (%q) = %d %s, want %d", tt.ctype, r.status, r.body, tt.want)
			}
			if tt.want != 415 {
				if !strings.Contains(string(r.body), `"Created":1`) {
					t.Fatalf("import = %s", r.body)
				}
				return
			}
			e := r.envelope(t)
			if e.Error.Code != "UnsupportedMediaType" || !strings.Contains(e.Error.Message, "text/csv") || !strings.Contains(e.Error.Message, "application/x-ndjson") {
				t.Fatalf("415 answer %s", r.body)
			}
			if after := len(b.do(t, "GET", "/v1/batches", "").body); after != before {
				t.Fatal("a refused import left a campaign behind")
			}
		})
	}
}

// TestHostCheck: an open API (no tokens) on loopback answers only its own names, so
// that a page whose name was rebound to 127.0.0.1 cannot reach it; with tokens the
// token is the check.
func TestHostCheck(t *testing.T) {
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080}
	hosts := LoopbackHosts(addr, "https://kyc.example.com")
	for _, tt := range []struct {
		host   string
		tokens bool
		want   int
	}{
		{"127.0.0.1:8080", false, 200},
		{"localhost:8080", false, 200},
		{"LOCALHOST:8080", false, 200},
		{"[::1]:8080", false, 200},
		{"kyc.example.com", false, 200},
		{"evil.example:8080", false, 421},
		{"localhost:9999", false, 421},
		{"evil.example:8080", true, 200},
	} {
		_, b := setup(t, func(c *Config) {
			c.Hosts = hosts
			if tt.tokens {
				c.Tokens = []string{"tok"}
			}
		})
		req, _ := http.NewRequest("GET", b.srv.URL+"/v1/pipeline", nil)
		req.Host = tt.host
		if tt.tokens {
			req.Header.Set("Authorization", "Bearer tok")
		}
		resp, err := b.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(resp)
		if resp.StatusCode != tt.want {
			t.Errorf("Host %q (tokens %v) = %d %s, want %d", tt.host, tt.tokens, resp.StatusCode, body, tt.want)
		}
		if tt.want == 421 && !strings.Contains(string(body), CodeHostNotAllowed) {
			t.Errorf("421 answer %s", body)
		}
	}
	if LoopbackHosts(&net.TCPAddr{IP: net.IPv4zero, Port: 8080}, "") != nil {
		t.Error("a non-loopback listener gets a Host check")
	}
	if LoopbackHosts(&net.UnixAddr{Name: "/tmp/s", Net: "unix"}, "") != nil {
		t.Error("a unix socket gets a Host check")
	}
}

func readAll(resp *http.Response) []byte {
	defer resp.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			return []byte(sb.String())
		}
	}
}

// TestJobAnswersAlike: a GET answers Location like a POST, and a fresh 202 shows its
// times with the precision of later reads (milliseconds).
func TestJobAnswersAlike(t *testing.T) {
	_, b := setup(t, nil)
	post := b.do(t, "POST", "/v1/tokens", okBody)
	j := post.job(t)
	get := b.do(t, "GET", "/v1/tokens/"+j.JobId, "")
	want := "/v1/tokens/" + j.JobId
	if post.header.Get("Location") != want || get.header.Get("Location") != want {
		t.Fatalf("Location: POST %q, GET %q; want %q", post.header.Get("Location"), get.header.Get("Location"), want)
	}
	created := func(a answer) string {
		var v struct{ CreatedAt string }
		if err := json.Unmarshal(a.body, &v); err != nil {
			t.Fatal(err)
		}
		return v.CreatedAt
	}
	if p, g := created(post), created(get); p != g || len(p) != len("2006-01-02T15:04:05.000Z") {
		t.Fatalf("CreatedAt: POST %q, GET %q; want the same, in milliseconds", p, g)
	}
}
