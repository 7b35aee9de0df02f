package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/faceidq/faceidq/internal/campaign"
	"github.com/faceidq/faceidq/internal/faceidtest"
	"github.com/faceidq/faceidq/internal/hatest"
	"github.com/faceidq/faceidq/internal/simulator"
	"github.com/faceidq/faceidq/internal/waittest"
	"github.com/faceidq/faceidq/tasks"
)

// TestCLICampaignOnCluster runs the command of issue 11 against a 3-master Redis
// Cluster: `REDIS_URL=redis-cluster://… faceidq enqueue --file users.csv --batch c1
// --no-wait` imports (it answered CROSSSLOT before campaign keys were hash-tagged),
// and a `faceidq worker` on the same Cluster feeds and completes the campaign.
func TestCLICampaignOnCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node Redis Cluster")
	}
	cl := hatest.StartCluster(t, hatest.ClusterOptions{})
	sim := faceidtest.Start(t, simulator.Config{})
	start(t, map[string]string{"REDIS_URL": cl.URL(), "TENCENTCLOUD_SECRET_ID": sim.SecretID,
		"TENCENTCLOUD_SECRET_KEY": sim.SecretKey, "FACEIDQ_ENDPOINT": sim.URL}, "worker")
	env := map[string]string{"REDIS_URL": cl.URL()}
	cli := func(args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		code := run(ctx, args, getenvFrom(env), &out, &errb)
		return code, out.String(), errb.String()
	}
	file := filepath.Join(t.TempDir(), "users.csv")
	var csvText strings.Builder
	csvText.WriteString("redirect_url,extra,row_key\n")
	for _, k := range []string{"u1", "u2", "u3", "u4", "u5", "u6"} {
		csvText.WriteString("https://example.com/done," + k + "," + k + "\n")
	}
	if err := os.WriteFile(file, []byte(csvText.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	code, out, errs := cli("enqueue", "--file", file, "--batch", "c1", "--no-wait")
	var sum campaign.ImportSummary
	if code != 0 || json.Unmarshal([]byte(out), &sum) != nil || sum.Created != 6 {
		t.Fatalf("enqueue --file --no-wait = %d\nstdout %s\nstderr %s", code, out, errs)
	}
	var p campaign.Progress
	waittest.Until(t, 30*time.Second, "campaign c1 done", func() bool {
		code, out, _ := cli("batch", "status", "c1")
		return code == 0 && json.Unmarshal([]byte(out), &p) == nil && p.Done
	})
	if p.Counts[string(tasks.StatusSucceeded)] != 6 || p.BatchId != sum.BatchId {
		t.Fatalf("campaign c1: %+v", p)
	}
}
