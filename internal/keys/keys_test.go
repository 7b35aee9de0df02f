package keys

import (
	"strings"
	"testing"
)

func TestKeys(t *testing.T) {
	tests := []struct{ name, got, want string }{
		{"result", Result("j1"), "faceidq:result:j1"},
		{"done", Done, "faceidq:done"},
		{"idempotency", Idempotency("abc"), "faceidq:idem:abc"},
		{"image", Image("ff"), "faceidq:image:ff"},
		{"limiter", Limiter("AKID", "Apply", "host"), "faceidq:{limiter:AKID:Apply:host}"},
		{"batch", Batch("b1"), "faceidq:batch:{b1}"},
		{"batch jobs", BatchJobs("b1"), "faceidq:batch:{b1}:jobs"},
		{"link", Link("l1"), "faceidq:link:l1"},
		{"webhook dead", WebhookDead, "faceidq:{webhook:dead}"},
		{"webhook dead payloads", WebhookDeadPayloads, "faceidq:{webhook:dead}:payloads"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

// hashTag is the part of a key Redis Cluster hashes: the first non-empty {…}, or the
// whole key.
func hashTag(k string) string {
	if i := strings.IndexByte(k, '{'); i >= 0 {
		if j := strings.IndexByte(k[i+1:], '}'); j > 0 {
			return k[i+1 : i+1+j]
		}
	}
	return k
}

// TestCampaignKeysShareOneSlot pins that every key of one campaign hashes to the
// same Cluster slot (its MULTIs and scripts span them), and that the public job
// record and the global keys do not (they must stay out of those MULTIs).
func TestCampaignKeysShareOneSlot(t *testing.T) {
	const b = "b_0123456789abcdef"
	campaign := []string{Batch(b), BatchJobs(b), BatchRows(b), BatchRerun(b), BatchImages(b),
		BatchLinks(b), BatchFeedLock(b), BatchImportLock(b)}
	for _, k := range campaign {
		if got := hashTag(k); got != b {
			t.Errorf("%s hashes on %q, want %q", k, got, b)
		}
	}
	for _, k := range []string{Result("j_1"), Batches, BatchesActive, BatchName("n"), FeedInflight, Link("l_1")} {
		if hashTag(k) == b {
			t.Errorf("%s shares the campaign's slot; it is not expected to", k)
		}
	}
	if got := hashTag(WebhookDeadPayloads); got != hashTag(WebhookDead) {
		t.Errorf("webhook dead keys hash on %q and %q", got, hashTag(WebhookDead))
	}
}
