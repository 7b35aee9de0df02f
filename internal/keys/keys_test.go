package keys

import "testing"

func TestKeys(t *testing.T) {
	tests := []struct{ name, got, want string }{
		{"result", Result("j1"), "faceidq:result:j1"},
		{"done", Done, "faceidq:done"},
		{"idempotency", Idempotency("abc"), "faceidq:idem:abc"},
		{"image", Image("ff"), "faceidq:image:ff"},
		{"limiter", Limiter("AKID", "Apply", "host"), "faceidq:{limiter:AKID:Apply:host}"},
		{"batch", Batch("b1"), "faceidq:batch:b1"},
		{"batch jobs", BatchJobs("b1"), "faceidq:batch:b1:jobs"},
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
