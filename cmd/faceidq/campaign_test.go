package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/faceidtest"
	"github.com/faceidq/faceidq/internal/redistest"
	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/tasks"
)

// waitDone polls GET /v1/batches/{id} until the campaign is done.
func waitDone(t *testing.T, c *client, id string) *campaign.Progress {
	t.Helper()
	var p campaign.Progress
	waittest.UntilReason(t, 60*time.Second, "campaign "+id+" done", func() (bool, string) {
		r := c.do("GET", "/v1/batches/"+id, "")
		p = campaign.Progress{}
		if r.status != 200 || json.Unmarshal(r.body, &p) != nil {
			t.Fatalf("GET /v1/batches/%s = %d %s", id, r.status, r.body)
		}
		return p.Done, string(r.body)
	})
	return &p
}

// TestServeCampaigns imports campaigns over HTTP into `faceidq serve` (embedded
// Redis and simulator, bearer tokens on): counts, progress, the results stream,
// and a start link opened without a token.
func TestServeCampaigns(t *testing.T) {
	const tok = "campaign-token-0123456789"
	p := start(t, map[string]string{"FACEIDQ_API_TOKENS": tok}, "serve", "--listen", "127.0.0.1:0")
	base := "http://" + p.addr("api")
	c := &client{t: t, base: base, token: tok}
	anon := &client{t: t, base: base}

	body := strings.Join([]string{
		`{"RedirectURL":"https://example.com/done","Extra":"u1","RowKey":"u1"}`,
		`{"RedirectURL":"ftp://example.com/done","RowKey":"bad-url"}`,
		`{"RedirectURL":"https://example.com/done","Extra":"u2","RowKey":"u2"}`,
		`not json`,
		`{"RedirectURL":"https://example.com/done","Extra":"u3","RowKey":"u3"}`,
	}, "\n") + "\n"

	t.Run("batches need a token", func(t *testing.T) {
		for _, rt := range []struct{ method, path string }{{"POST", "/v1/batches"}, {"GET", "/v1/batches"}, {"GET", "/v1/links/l_x"}} {
			if r := anon.do(rt.method, rt.path, body); r.status != 401 {
				t.Errorf("%s %s without a token = %d %s", rt.method, rt.path, r.status, r.body)
			}
		}
	})

	var sum campaign.ImportSummary
	t.Run("import", func(t *testing.T) {
		r := c.do("POST", "/v1/batches?name=http-campaign", body, "Content-Type", "application/x-ndjson")
		if r.status != 202 || json.Unmarshal(r.body, &sum) != nil {
			t.Fatalf("POST /v1/batches = %d %s", r.status, r.body)
		}
		if sum.Accepted != 3 || sum.Created != 3 || sum.RejectedCount != 2 || sum.Lines != 5 || sum.Name != "http-campaign" {
			t.Fatalf("summary %+v", sum)
		}
		lines := map[int]string{}
		for _, rj := range sum.Rejected {
			lines[rj.Line] = rj.Error.Message
		}
		if !strings.Contains(lines[2], "RedirectURL") || lines[4] == "" {
			t.Fatalf("rejections %+v", sum.Rejected)
		}
	})

	t.Run("status", func(t *testing.T) {
		pr := waitDone(t, c, sum.BatchId)
		if pr.Total != 3 || pr.Counts[string(tasks.StatusSucceeded)] != 3 {
			t.Fatalf("progress %+v", pr)
		}
		if byName := waitDone(t, c, "http-campaign"); byName.BatchId != sum.BatchId {
			t.Fatalf("by name: %+v", byName)
		}
	})

	t.Run("results stream", func(t *testing.T) {
		r := c.do("GET", "/v1/batches/"+sum.BatchId+"/results", "")
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/x-ndjson") {
			t.Fatalf("results = %d %v", r.status, r.header)
		}
		got := map[string]string{}
		sc := bufio.NewScanner(bytes.NewReader(r.body))
		for sc.Scan() {
			var j tasks.Job
			if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			if j.Status != tasks.StatusSucceeded || j.VerificationURL == "" || j.BatchId != sum.BatchId {
				t.Fatalf("job %s", sc.Text())
			}
			got[j.Extra] = j.JobId
		}
		if len(got) != 3 || got["u1"] == "" || got["u2"] == "" || got["u3"] == "" {
			t.Fatalf("results by Extra %v\n%s", got, r.body)
		}
	})

	t.Run("start link without a token", func(t *testing.T) {
		r := c.do("POST", "/v1/batches?mode=links&name=links&link_ttl=24h", `{"RedirectURL":"https://example.com/done","RowKey":"person-1"}`+"\n", "Content-Type", "application/x-ndjson")
		var ls campaign.ImportSummary
		if r.status != 202 || json.Unmarshal(r.body, &ls) != nil || ls.Created != 1 || ls.Mode != campaign.ModeLinks {
			t.Fatalf("POST links = %d %s", r.status, r.body)
		}
		r = c.do("GET", "/v1/batches/"+ls.BatchId+"/results", "")
		var link campaign.Link
		if err := json.Unmarshal(bytes.TrimSpace(r.body), &link); err != nil || link.RowKey != "person-1" {
			t.Fatalf("link export %d %s: %v", r.status, r.body, err)
		}
		if link.URL != base+"/v1/start/"+link.LinkId {
			t.Fatalf("link URL %q, want it under %s (default FACEIDQ_PUBLIC_URL)", link.URL, base)
		}
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noFollow.Get(link.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.Contains(loc, "/verify?token=") {
			t.Fatalf("GET %s = %d Location %q", link.URL, resp.StatusCode, loc)
		}
		if r := anon.do("GET", "/v1/links/"+link.LinkId, ""); r.status != 401 {
			t.Fatalf("GET /v1/links without a token = %d", r.status)
		}
		if r := c.do("GET", "/v1/links/"+link.LinkId, ""); r.status != 200 || !strings.Contains(string(r.body), `"Mints":1`) {
			t.Fatalf("GET /v1/links = %d %s", r.status, r.body)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		r := c.do("GET", "/metrics", "")
		for _, want := range []string{`route="POST /v1/batches"`, `route="GET /v1/start/{LinkId}"`, "faceidq_queue_inspect_up"} {
			if !strings.Contains(string(r.body), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		if strings.Contains(string(r.body), sum.BatchId) {
			t.Error("a metrics label holds a BatchId")
		}
	})
}

// TestCLICampaign runs `faceidq worker` and the campaign commands against a real
// redis-server: enqueue --file feeds a CSV to the end, export joins back by row
// key, batch cancel, and webhook failed on an empty set.
func TestCLICampaign(t *testing.T) {
	srv := redistest.Start(t, redistest.Options{})
	sim := faceidtest.Start(t, simulator.Config{})
	wrk := start(t, map[string]string{"REDIS_URL": srv.URL(), "TENCENTCLOUD_SECRET_ID": sim.SecretID,
		"TENCENTCLOUD_SECRET_KEY": sim.SecretKey, "FACEIDQ_ENDPOINT": sim.URL, "FACEIDQ_METRICS_LISTEN": "127.0.0.1:0"}, "worker")
	env := map[string]string{"REDIS_URL": srv.URL()}
	cli := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second) // a stuck command fails the test
		defer cancel()
		code := run(ctx, args, getenvFrom(env), &out, &errb)
		return code, out.String(), errb.String()
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "users.csv")
	csvText := "redirect_url,extra,row_key\n" +
		"https://example.com/done,first,u1\n" +
		"https://example.com/done,second,u2\n" +
		"ftp://example.com/done,bad,u3\n" +
		"https://example.com/done,fourth,u4\n"
	if err := os.WriteFile(file, []byte(csvText), 0o600); err != nil {
		t.Fatal(err)
	}

	var sum campaign.ImportSummary
	t.Run("enqueue file", func(t *testing.T) {
		code, out, errs := cli(t, "enqueue", "--file", file, "--batch", "cli-campaign")
		if code != 0 || json.Unmarshal([]byte(out), &sum) != nil {
			t.Fatalf("enqueue --file = %d\nstdout %s\nstderr %s", code, out, errs)
		}
		if sum.Created != 3 || sum.RejectedCount != 1 || sum.Name != "cli-campaign" {
			t.Fatalf("summary %+v", sum)
		}
		if !strings.Contains(errs, "users.csv:4: rejected:") || !strings.Contains(errs, "redirect_url") && !strings.Contains(errs, "RedirectURL") {
			t.Fatalf("the bad line is not reported with its number:\n%s", errs)
		}
		if !strings.Contains(errs, "3/3 final (100.0%): succeeded 3") {
			t.Fatalf("no final progress line:\n%s", errs)
		}
	})

	t.Run("every job final", func(t *testing.T) {
		code, out, errs := cli(t, "batch", "status", "cli-campaign")
		var p campaign.Progress
		if code != 0 || json.Unmarshal([]byte(out), &p) != nil || !p.Done || p.Counts[string(tasks.StatusSucceeded)] != 3 {
			t.Fatalf("batch status = %d %s %s", code, out, errs)
		}
	})

	t.Run("watch a done campaign", func(t *testing.T) {
		code, out, errs := cli(t, "batch", "status", "--watch", "cli-campaign")
		if code != 0 || !strings.Contains(out, `"Done": true`) || !strings.Contains(errs, "3/3 final") {
			t.Fatalf("batch status --watch = %d %s %s", code, out, errs)
		}
	})

	t.Run("only bad lines", func(t *testing.T) {
		bad := filepath.Join(dir, "bad.csv")
		if err := os.WriteFile(bad, []byte("redirect_url\nftp://x/y\nnot a url\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errs := cli(t, "enqueue", "--file", bad)
		if code != 0 || !strings.Contains(out, `"RejectedCount": 2`) || !strings.Contains(errs, "nothing to feed") ||
			!strings.Contains(errs, "bad.csv:2: rejected:") || !strings.Contains(errs, "bad.csv:3: rejected:") {
			t.Fatalf("enqueue of bad lines = %d %s %s", code, out, errs)
		}
	})

	t.Run("again creates nothing", func(t *testing.T) {
		code, out, errs := cli(t, "enqueue", "--file", file, "--batch", "cli-campaign")
		var again campaign.ImportSummary
		if code != 0 || json.Unmarshal([]byte(out), &again) != nil || again.Created != 0 || again.Existing != 3 || again.BatchId != sum.BatchId {
			t.Fatalf("second enqueue = %d %s %s", code, out, errs)
		}
	})

	t.Run("export joins by row key", func(t *testing.T) {
		outFile := filepath.Join(dir, "results.csv")
		if code, _, errs := cli(t, "export", "--batch", "cli-campaign", "--out", outFile); code != 0 {
			t.Fatalf("export = %d %s", code, errs)
		}
		f, err := os.Open(outFile)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rows, err := csv.NewReader(f).ReadAll()
		if err != nil || len(rows) != 4 {
			t.Fatalf("export CSV %v: %v", rows, err)
		}
		col := map[string]int{}
		for i, h := range rows[0] {
			col[h] = i
		}
		byKey := map[string][]string{}
		for _, r := range rows[1:] {
			byKey[r[col["row_key"]]] = r
		}
		for _, k := range []string{"u1", "u2", "u4"} {
			r, ok := byKey[k]
			if !ok || r[col["status"]] != "succeeded" || r[col["biz_token"]] == "" || !strings.HasPrefix(r[col["verification_url"]], "https://") {
				t.Errorf("row %s: %v", k, r)
			}
		}
		code, out, _ := cli(t, "export", "--batch", sum.BatchId)
		if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, `"Extra":"fourth"`) {
			t.Fatalf("NDJSON export to stdout = %d %s", code, out)
		}
	})

	t.Run("batch cancel", func(t *testing.T) {
		if code, _, errs := cli(t, "pause"); code != 0 {
			t.Fatalf("pause = %d %s", code, errs)
		}
		defer cli(t, "resume")
		other := filepath.Join(dir, "later.ndjson")
		if err := os.WriteFile(other, []byte(`{"RedirectURL":"https://example.com/done","RowKey":"a"}`+"\n"+
			`{"RedirectURL":"https://example.com/done","RowKey":"b"}`+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errs := cli(t, "enqueue", "--file", other, "--batch", "later", "--no-wait")
		if code != 0 || !strings.Contains(out, `"Created": 2`) {
			t.Fatalf("enqueue --no-wait = %d %s %s", code, out, errs)
		}
		code, out, errs = cli(t, "batch", "cancel", "later")
		var cs campaign.CancelSummary
		if code != 0 || json.Unmarshal([]byte(out), &cs) != nil || cs.Canceled != 2 {
			t.Fatalf("batch cancel = %d %s %s", code, out, errs)
		}
		code, out, _ = cli(t, "batch", "status", "later")
		if code != 0 || !strings.Contains(out, `"State": "canceled"`) || !strings.Contains(out, `"canceled": 2`) {
			t.Fatalf("status after cancel = %d %s", code, out)
		}
		code, out, _ = cli(t, "batch", "list")
		var all []campaign.Info
		if code != 0 || json.Unmarshal([]byte(out), &all) != nil || len(all) != 3 {
			t.Fatalf("batch list = %d %s", code, out)
		}
		if code, _, errs := cli(t, "batch", "status", "no-such-campaign"); code != 1 || !strings.Contains(errs, "no campaign") {
			t.Fatalf("status of an unknown campaign = %d %s", code, errs)
		}
	})

	t.Run("batch weight", func(t *testing.T) {
		file := filepath.Join(dir, "weighted.ndjson")
		if err := os.WriteFile(file, []byte(`{"RedirectURL":"https://example.com/done","RowKey":"w"}`+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"enqueue", "--file", file, "--batch", "weighted", "--weight", "0", "--no-wait"},
			{"enqueue", "--file", file, "--batch", "weighted", "--weight", "1001", "--no-wait"},
			{"enqueue", "--redirect-url", "https://example.com/r", "--weight", "2"},
		} {
			if code, _, errs := cli(t, args...); code != exitUsage || !strings.Contains(errs, "weight") {
				t.Fatalf("%v = %d %s", args, code, errs)
			}
		}
		code, out, errs := cli(t, "enqueue", "--file", file, "--batch", "weighted", "--weight", "4", "--no-wait")
		if code != 0 {
			t.Fatalf("enqueue --weight 4 = %d %s %s", code, out, errs)
		}
		code, out, _ = cli(t, "batch", "list")
		if code != 0 || !strings.Contains(out, `"Name": "weighted"`) || !strings.Contains(out, `"Weight": 4`) {
			t.Fatalf("batch list = %d %s", code, out)
		}
		code, out, errs = cli(t, "batch", "weight", "weighted", "9")
		var in campaign.Info
		if code != 0 || json.Unmarshal([]byte(out), &in) != nil || in.Weight != 9 || in.Name != "weighted" {
			t.Fatalf("batch weight = %d %s %s", code, out, errs)
		}
		for _, args := range [][]string{{"batch", "weight", "weighted"}, {"batch", "weight", "weighted", "x"}, {"batch", "weight", "weighted", "0"}} {
			if code, _, errs := cli(t, args...); code != exitUsage || !strings.Contains(errs, "weight") {
				t.Fatalf("%v = %d %s", args, code, errs)
			}
		}
		if code, _, errs := cli(t, "batch", "weight", "no-such-campaign", "2"); code != 1 || !strings.Contains(errs, "no campaign") {
			t.Fatalf("weight of an unknown campaign = %d %s", code, errs)
		}
	})

	// Images in local files are fed only by the importing command: Ctrl-C stops it,
	// and running it again finishes the campaign without a duplicate.
	t.Run("interrupt and resume", func(t *testing.T) {
		imgDir := t.TempDir()
		var rows strings.Builder
		rows.WriteString("row_key,redirect_url,image_path\n")
		for i := range 3 {
			name := fmt.Sprintf("p%d.jpg", i)
			if err := os.WriteFile(filepath.Join(imgDir, name), []byte(fmt.Sprintf("photo %d bytes", i)), 0o600); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&rows, "k%d,https://example.com/done,%s\n", i, name)
		}
		imgFile := filepath.Join(imgDir, "photos.csv")
		if err := os.WriteFile(imgFile, []byte(rows.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, _, errs := cli(t, "pause"); code != 0 { // nothing runs until resumed
			t.Fatalf("pause = %d %s", code, errs)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		out, errb := &syncBuffer{}, &syncBuffer{}
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"enqueue", "--file", imgFile, "--batch", "photos", "--no-wait"}, getenvFrom(env), out, errb)
		}()
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(errb.String(), "--no-wait ignored") {
			if time.Now().After(deadline) {
				t.Fatalf("the import did not go on feeding:\n%s\n%s", out, errb)
			}
			select {
			case code := <-done:
				t.Fatalf("enqueue returned %d before Ctrl-C:\n%s\n%s", code, out, errb)
			case <-time.After(20 * time.Millisecond):
			}
		}
		cancel() // Ctrl-C
		select {
		case code := <-done:
			if code != 1 || !strings.Contains(errb.String(), "interrupted") {
				t.Fatalf("interrupted enqueue = %d\n%s", code, errb)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("enqueue did not stop on Ctrl-C")
		}
		if code, _, errs := cli(t, "resume"); code != 0 {
			t.Fatalf("resume = %d %s", code, errs)
		}
		code, stdout, errs := cli(t, "enqueue", "--file", imgFile, "--batch", "photos")
		var again campaign.ImportSummary
		if code != 0 || json.Unmarshal([]byte(stdout), &again) != nil || again.Created != 0 || again.Existing != 3 {
			t.Fatalf("enqueue again = %d %s %s", code, stdout, errs)
		}
		code, stdout, _ = cli(t, "batch", "status", "photos")
		var p campaign.Progress
		if code != 0 || json.Unmarshal([]byte(stdout), &p) != nil || !p.Done || p.Total != 3 || p.Counts[string(tasks.StatusSucceeded)] != 3 {
			t.Fatalf("status after resuming = %d %s", code, stdout)
		}
	})

	t.Run("webhook failed on an empty set", func(t *testing.T) {
		code, out, errs := cli(t, "webhook", "failed")
		if code != 0 || strings.TrimSpace(out) != "[]" {
			t.Fatalf("webhook failed = %d %q %s", code, out, errs)
		}
		code, _, errs = cli(t, "webhook", "replay", tasks.NewJobID())
		if code != 1 || !strings.Contains(errs, "no exhausted webhook delivery") {
			t.Fatalf("replay of nothing = %d %s", code, errs)
		}
		if code, out, _ := cli(t, "webhook", "replay", "--all"); code != 0 || !strings.Contains(out, `"Replayed": 0`) {
			t.Fatalf("replay --all = %d %s", code, out)
		}
	})

	t.Run("worker exports the queues", func(t *testing.T) {
		w := &client{t: t, base: "http://" + wrk.addr("metrics")}
		r := w.do("GET", "/metrics", "")
		if !strings.Contains(string(r.body), `faceidq_queue_tasks{queue="`) || !strings.Contains(string(r.body), "faceidq_queue_inspect_up 1") {
			t.Fatalf("worker metrics lack the queues:\n%s", r.body)
		}
	})
}
