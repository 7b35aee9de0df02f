package faultsuite

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// rawResult is what a raw HTTP exchange got back.
type rawResult struct {
	status int  // 0 when the connection closed without an answer
	closed bool // the connection ended without an answer
	took   time.Duration
}

// rawExchange writes req on a new connection to addr (optionally half-closing it
// after), and reads one answer.
func rawExchange(addr string, req []byte, closeWrite bool, deadline time.Duration) (rawResult, error) {
	start := time.Now()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return rawResult{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(deadline))
	go func() {
		_, _ = conn.Write(req) // the server may answer and close before reading it all
		if closeWrite {
			_ = conn.(*net.TCPConn).CloseWrite()
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return rawResult{took: time.Since(start)}, fmt.Errorf("no answer within %v: %w", deadline, err)
		}
		return rawResult{closed: true, took: time.Since(start)}, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return rawResult{status: resp.StatusCode, took: time.Since(start)}, nil
}

// post builds a raw POST /v1/tokens with body and extra header lines.
func post(body string, headers ...string) []byte {
	h := "POST /v1/tokens HTTP/1.1\r\nHost: api\r\nConnection: close\r\nContent-Type: application/json\r\n"
	for _, l := range headers {
		h += l + "\r\n"
	}
	return []byte(h + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body)
}

// postNoLength builds a raw POST /v1/tokens whose framing headers are given whole.
func postNoLength(framing, body string) []byte {
	return []byte("POST /v1/tokens HTTP/1.1\r\nHost: api\r\nConnection: close\r\nContent-Type: application/json\r\n" +
		framing + "\r\n" + body)
}

func get(path string, headers ...string) []byte {
	h := "GET " + path + " HTTP/1.1\r\nHost: api\r\nConnection: close\r\n"
	for _, l := range headers {
		h += l + "\r\n"
	}
	return []byte(h + "\r\n")
}

// hostile is one request of the corpus.
type hostile struct {
	name       string
	req        []byte
	closeWrite bool
	allow      []int // statuses accepted besides 4xx, for the reason in the comment
}

func hostileCorpus() []hostile {
	big := strings.Repeat("A", 10<<20)
	deep := func(open, close string, n int) string { return strings.Repeat(open, n) + strings.Repeat(close, n) }
	valid := `"RedirectURL":"https://example.com/done"`
	return []hostile{
		{name: "body over 9 MiB", req: post(`{` + valid + `,"Extra":"` + big + `"}`)},
		{name: "body over 9 MiB chunked", req: postNoLength("Transfer-Encoding: chunked\r\n",
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(big)+len(valid)+4, `{`+valid+`,"`+big+`"}`))},
		{name: "Content-Length 1 TB", req: postNoLength("Content-Length: 1000000000000\r\n", `{`+valid+`}`)},
		{name: "deep array nesting", req: post(`{` + valid + `,"Extra":` + deep("[", "]", 100000) + `}`)},
		{name: "deep object nesting in Config", req: post(`{` + valid + `,"Config":` + deep(`{"a":`, "}", 50000) + `}`)},
		{name: "deep nesting at top level", req: post(deep("[", "]", 200000))},
		{name: "invalid UTF-8 in RedirectURL", req: post("{\"RedirectURL\":\"https://example.com/\xff\xfe\"}")},
		{name: "invalid UTF-8 in Extra", req: post("{" + valid + ",\"Extra\":\"\xc3\x28\xa0\xa1\"}")},
		{name: "invalid UTF-8 in a key", req: post("{" + valid + ",\"Ext\xffra\":\"x\"}")},
		{name: "NUL byte in JSON", req: post("{" + valid + ",\"Extra\":\"a\x00b\"}")},
		{name: "escaped control characters in RedirectURL", req: post(`{"RedirectURL":"https://example.com/\u0000\u001b"}`)},
		{name: "CRLF injection in RedirectURL", req: post(`{"RedirectURL":"https://example.com/done\r\nSet-Cookie: a=b"}`)},
		{name: "space in RedirectURL", req: post(`{"RedirectURL":"https://example.com/a b"}`)},
		{name: "javascript RedirectURL", req: post(`{"RedirectURL":"javascript:alert(1)"}`)},
		{name: "RedirectURL without host", req: post(`{"RedirectURL":"https:///path"}`)},
		{name: "RedirectURL 100 KB", req: post(`{"RedirectURL":"https://example.com/` + strings.Repeat("a", 100<<10) + `"}`)},
		{name: "CRLF injection in CallbackURL", req: post(`{` + valid + `,"CallbackURL":"http://127.0.0.1:9/hook\r\nX-Injected: 1"}`)},
		{name: "header injection in CallbackURL (escaped LF)", req: post(`{` + valid + `,"CallbackURL":"http://127.0.0.1:9/hook\nHost: evil"}`)},
		{name: "CallbackURL to metadata address", req: post(`{` + valid + `,"CallbackURL":"http://169.254.169.254/latest/meta-data"}`)},
		{name: "CallbackURL with credentials", req: post(`{` + valid + `,"CallbackURL":"http://user:pass@127.0.0.1:9/hook"}`)},
		{name: "CallbackURL file scheme", req: post(`{` + valid + `,"CallbackURL":"file:///etc/passwd"}`)},
		{name: "Content-Length not a number", req: postNoLength("Content-Length: abc\r\n", `{`+valid+`}`)},
		{name: "Content-Length negative", req: postNoLength("Content-Length: -1\r\n", `{`+valid+`}`)},
		{name: "two different Content-Lengths", req: postNoLength("Content-Length: 2\r\nContent-Length: 43\r\n", `{`+valid+`}`)},
		{name: "Content-Length longer than the body", req: postNoLength("Content-Length: 500\r\n", `{`+valid+`}`), closeWrite: true},
		{name: "Content-Length shorter than the body (smuggling)", req: postNoLength("Content-Length: 5\r\n",
			`{`+valid+`}GET /v1/pipeline HTTP/1.1\r\nHost: api\r\n\r\n`)},
		{name: "chunked with a bad chunk size", req: postNoLength("Transfer-Encoding: chunked\r\n", "zz\r\n{}\r\n0\r\n\r\n")},
		{name: "chunked and Content-Length", req: postNoLength("Transfer-Encoding: chunked\r\nContent-Length: 3\r\n", "zz\r\n")},
		// net/http answers a transfer coding it does not implement with 501 (RFC 9112 §6.1).
		{name: "unknown Transfer-Encoding", req: postNoLength("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"),
			allow: []int{http.StatusNotImplemented}},
		{name: "headers over 64 KiB", req: post(`{`+valid+`}`, "X-Big: "+strings.Repeat("b", 100<<10))},
		{name: "empty body", req: post(``)},
		{name: "null body", req: post(`null`)},
		{name: "array body", req: post(`[` + `{` + valid + `}` + `]`)},
		{name: "two objects", req: post(`{` + valid + `}{` + valid + `}`)},
		{name: "duplicate key", req: post(`{` + valid + `,"RedirectURL":"https://evil.example/"}`)},
		{name: "unknown key", req: post(`{` + valid + `,"SecretKey":"x"}`)},
		{name: "case-folded key", req: post(`{"redirecturl":"https://example.com/done"}`)},
		{name: "wrong type", req: post(`{"RedirectURL":["https://example.com/done"]}`)},
		{name: "number overflow", req: post(`{` + valid + `,"Config":{"LivenessTimeout":1e400}}`)},
		{name: "huge integer", req: post(`{` + valid + `,"Config":{"CheckMode":99999999999999999999999999}}`)},
		{name: "byte order mark", req: post("\xef\xbb\xbf{" + valid + "}")},
		{name: "image not base64", req: post(`{` + valid + `,"CompareImageBase64":"not base64!!"}`)},
		{name: "image over 8 MB", req: post(`{` + valid + `,"CompareImageBase64":"` + strings.Repeat("QUFB", (8<<20)/4+1) + `"}`)},
		{name: "Extra over 1,000 characters", req: post(`{` + valid + `,"Extra":"` + strings.Repeat("x", 1001) + `"}`)},
		{name: "unknown region", req: post(`{` + valid + `,"Region":"mars-north-1"}`)},
		{name: "form body", req: postNoLength("Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 33\r\n",
			"RedirectURL=https%3A%2F%2Fexample")},
		{name: "Idempotency-Key 10 KB", req: post(`{`+valid+`}`, "Idempotency-Key: "+strings.Repeat("k", 10<<10))},
		{name: "Idempotency-Key twice", req: post(`{`+valid+`}`, "Idempotency-Key: a", "Idempotency-Key: b")},
		{name: "Prefer wait overflow", req: post(`{`+valid+`,"Extra":`+deep("[", "]", 3)+`}`, "Prefer: wait=99999999999999999999999")},
		{name: "header with CR", req: []byte("POST /v1/tokens HTTP/1.1\r\nHost: api\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\n{}")},
		{name: "header without colon", req: []byte("POST /v1/tokens HTTP/1.1\r\nHost: api\r\nnocolon\r\nContent-Length: 2\r\n\r\n{}")},
		{name: "HTTP/0.9 style", req: []byte("POST /v1/tokens\r\n\r\n")},
		{name: "absolute-form to another host", req: []byte("POST http://evil.example/v1/tokens HTTP/1.1\r\nHost: api\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")},
		{name: "DELETE a job", req: []byte("DELETE /v1/tokens/j_aaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")},
		// ServeMux redirects an unclean path to its clean form on the same server.
		{name: "path traversal", req: get("/v1/tokens/../../../etc/passwd"), allow: []int{http.StatusTemporaryRedirect, http.StatusMovedPermanently}},
		{name: "encoded path traversal", req: get("/v1/tokens/..%2f..%2fetc%2fpasswd")},
		{name: "JobId glob", req: get("/v1/tokens/j_*")},
		{name: "JobId of another key", req: get("/v1/tokens/..%2Fidem%2Fx")},
		{name: "JobId 10 KB", req: get("/v1/tokens/j_" + strings.Repeat("a", 10<<10))},
		{name: "invalid UTF-8 in path", req: get("/v1/tokens/j_\xff\xfe")},
		{name: "TRACE", req: []byte("TRACE /v1/tokens HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n")},
		{name: "campaign with a bad mode", req: []byte("POST /v1/batches?mode=evil HTTP/1.1\r\nHost: api\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")},
		{name: "campaign with a negative link_ttl", req: []byte("POST /v1/batches?mode=links&link_ttl=-1h HTTP/1.1\r\nHost: api\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")},
		{name: "campaign path traversal", req: get("/v1/batches/..%2F..%2Fresult")},
		{name: "start link glob", req: get("/v1/start/l_*")},
		{name: "start link 10 KB", req: get("/v1/start/l_" + strings.Repeat("a", 10<<10))},
		{name: "POST to the pipeline with a body", req: []byte("PUT /v1/pipeline HTTP/1.1\r\nHost: api\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")},
	}
}

// TestHostileInput sends a corpus of hostile requests to a running `faceidq api`
// (webhooks on, so CallbackURL is checked, and 127.0.0.0/8 allowed): every one is
// answered 4xx or the connection is closed, nothing is enqueued (no result key, no
// asynq task), and the api still serves a valid request afterwards. A slowloris
// connection sending its headers a byte at a time is cut by ReadHeaderTimeout (10 s).
func TestHostileInput(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{env: map[string]string{
		"FACEIDQ_WEBHOOK_SECRET": testWebhookSecret,
		"FACEIDQ_WEBHOOK_ALLOW":  "127.0.0.0/8",
	}})
	api := s.api(t, "api", nil)
	addr := strings.TrimPrefix(api.url, "http://")

	t.Run("group", func(t *testing.T) {
		t.Run("slowloris", func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			head := "POST /v1/tokens HTTP/1.1\r\nHost: api\r\nX-Slow: " + strings.Repeat("s", 1000)
			cut := false
			for i := 0; i < len(head) && time.Since(start) < 30*time.Second; i++ {
				if _, err := conn.Write([]byte{head[i]}); err != nil {
					cut = true
					break
				}
				_ = conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				buf := make([]byte, 512)
				if n, err := conn.Read(buf); n > 0 || (err != nil && !isTimeout(err)) {
					cut = true // an answer (408) or EOF: the server gave up on us
					break
				}
			}
			took := time.Since(start)
			t.Logf("slowloris connection cut after %v", took.Round(time.Millisecond))
			if !cut {
				t.Fatalf("a connection sending its headers one byte every 0.5 s was still open after %v", took)
			}
			if took > 15*time.Second {
				t.Errorf("slowloris cut after %v: ReadHeaderTimeout is 10 s", took)
			}
		})
		for _, h := range hostileCorpus() {
			t.Run(h.name, func(t *testing.T) { checkHostile(t, addr, h) })
		}
	})

	t.Run("campaign of hostile lines", func(t *testing.T) {
		lines := []string{
			"{\"RedirectURL\":\"https://example.com/\xff\"}",
			`{"RedirectURL":"https://example.com/done\r\nX-A: b"}`,
			`{"RedirectURL":"https://example.com/done","CallbackURL":"http://127.0.0.1:9/x\r\nHost: evil"}`,
			`{"RedirectURL":"javascript:alert(1)"}`,
			`{"RedirectURL":"https://example.com/done","Extra":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
			`{"RedirectURL":"https://example.com/done","Bogus":1}`,
			"{\"RedirectURL\":\"https://example.com/done\",\"Extra\":\"\xc3\x28\xa0\xa1\"}",
			`{"RedirectURL":"https://example.com/done","CompareImage":"QUJD"}`,
			`{"RedirectURL":"https://example.com/done","CompareImageBase64":"not base64!!"}`,
			`[1,2,3]`,
			`null`,
			"\x00\x01\x02",
		}
		a, err := do(context.Background(), http.MethodPost, api.url+"/v1/batches?name=hostile", "",
			strings.Join(lines, "\n")+"\n", "Content-Type", "application/x-ndjson")
		if err != nil {
			t.Fatal(err)
		}
		if a.status/100 == 4 {
			return
		}
		var sum struct{ Accepted, Created, RejectedCount int }
		if err := json.Unmarshal([]byte(a.body), &sum); err != nil || a.status/100 != 2 {
			t.Fatalf("HTTP %d %s", a.status, a.body)
		}
		if sum.Accepted+sum.Created > 0 || sum.RejectedCount != len(lines) {
			t.Errorf("a campaign of %d hostile lines: %s", len(lines), a.body)
		}
	})

	ctx := context.Background()
	results, err := countKeys(ctx, s.rdb, "faceidq:result:*")
	if err != nil {
		t.Fatal(err)
	}
	asynqTasks, err := countKeys(ctx, s.rdb, "asynq:{*}:t:*")
	if err != nil {
		t.Fatal(err)
	}
	images, _ := countKeys(ctx, s.rdb, "faceidq:image:*")
	if results+asynqTasks+images > 0 {
		t.Errorf("hostile requests created %d results, %d asynq tasks, %d images", results, asynqTasks, images)
	}
	if api.Exited() {
		t.Fatalf("the api died:\n%s", api.Out.Tail(4096))
	}
	if id, a, err := submit(ctx, api.url, "", jobBody); err != nil || id == "" {
		t.Fatalf("a valid POST after the corpus: %v HTTP %d %s", err, a.status, a.body)
	}
	if out := api.Out.String(); strings.Contains(out, "panic") || strings.Contains(out, `"level":"error"`) {
		t.Errorf("a hostile request made the api log a panic or an internal error:\n%s", api.Out.Tail(4096))
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// checkHostile sends h and checks the answer is 4xx (or allowed), or the connection
// closed.
func checkHostile(t *testing.T, addr string, h hostile) {
	t.Helper()
	res, err := rawExchange(addr, h.req, h.closeWrite, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.closed || res.status >= 400 && res.status <= 499 || slices.Contains(h.allow, res.status) {
		return
	}
	t.Errorf("answered HTTP %d, want 4xx", res.status)
}
