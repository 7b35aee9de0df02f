package webhook

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseSecrets(t *testing.T) {
	a, b := newSecretString(t), newSecretString(t)
	short := "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 16))
	unpadded := "whsec_" + base64.RawStdEncoding.EncodeToString(make([]byte, 25))
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr string
	}{
		{"blank is none", "  ", 0, ""},
		{"one", a, 1, ""},
		{"two during rotation", a + " , " + b, 2, ""},
		{"reference vector key of 24 bytes", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 1, ""},
		{"unpadded base64", unpadded, 1, ""},
		{"missing prefix", strings.TrimPrefix(a, "whsec_"), 0, "secret 1 of 1: does not start with"},
		{"not base64", "whsec_!!!not-base64!!!", 0, "secret 1 of 1: key after the prefix is not base64"},
		{"too short", short, 0, "secret 1 of 1: key is 16 bytes, want at least 24"},
		{"empty entry", a + ",," + b, 0, "secret 2 of 3: empty"},
		{"trailing comma", a + ",", 0, "secret 2 of 2: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSecrets(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				for _, part := range strings.Split(tt.in, ",") {
					if p := strings.TrimSpace(part); len(p) > 8 && strings.Contains(err.Error(), p) {
						t.Errorf("error %q reveals a secret", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSecrets: %v", err)
			}
			if len(got) != tt.want {
				t.Fatalf("got %d secrets, want %d", len(got), tt.want)
			}
		})
	}
}

func TestSecretIsNeverPrinted(t *testing.T) {
	s := newSecretString(t)
	secrets := mustParseSecrets(t, s)
	key := strings.TrimPrefix(s, "whsec_")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
		for _, v := range []any{secrets[0], secrets, &secrets[0]} {
			out := fmt.Sprintf(verb, v)
			if strings.Contains(out, key) || strings.Contains(out, string(secrets[0].key)) {
				t.Errorf("fmt %s of %T prints the key: %s", verb, v, out)
			}
		}
	}
}

// The reference vector published with the Standard Webhooks specification.
func TestSignStandardWebhooksVector(t *testing.T) {
	secrets := mustParseSecrets(t, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	got := Sign(secrets, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

func TestSignRotation(t *testing.T) {
	oldS, newS, other := newSecretString(t), newSecretString(t), newSecretString(t)
	ts := time.Now()
	body := []byte(`{"type":"token.succeeded"}`)
	sig := Sign(mustParseSecrets(t, oldS, newS), "msg_1", ts, body)
	if n := len(strings.Split(sig, " ")); n != 2 {
		t.Fatalf("got %d signatures in %q, want 2", n, sig)
	}
	h := http.Header{}
	h.Set("webhook-id", "msg_1")
	h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	h.Set("webhook-signature", sig)
	tests := []struct {
		name    string
		secrets []string
		ok      bool
	}{
		{"receiver still on the old secret", []string{oldS}, true},
		{"receiver already on the new secret", []string{newS}, true},
		{"receiver with another secret", []string{other}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifyStandardWebhook(tt.secrets, h, body, ts, time.Minute)
			if (err == nil) != tt.ok {
				t.Fatalf("verify = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	t.Run("tampered body", func(t *testing.T) {
		if err := verifyStandardWebhook([]string{oldS, newS}, h, append(body, ' '), ts, time.Minute); err == nil {
			t.Fatal("a changed body verified")
		}
	})
}

func FuzzParseSecrets(f *testing.F) {
	f.Add("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	f.Add("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("whsec_")
	f.Add(",")
	f.Add("whsec_====")
	f.Add("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\x00")
	f.Fuzz(func(t *testing.T, in string) {
		secrets, err := ParseSecrets(in)
		if err != nil {
			if secrets != nil {
				t.Fatal("secrets returned with an error")
			}
			if !strings.HasPrefix(err.Error(), "webhook: secret ") {
				t.Fatalf("unexpected error shape %q", err)
			}
			for _, part := range strings.Split(in, ",") {
				p := strings.TrimSpace(part)
				if strings.HasPrefix(p, "whsec_") && len(p) > 12 && strings.Contains(err.Error(), p[6:]) {
					t.Fatalf("error %q reveals secret material", err)
				}
			}
			return
		}
		if strings.TrimSpace(in) != "" && len(secrets) != len(strings.Split(in, ",")) {
			t.Fatalf("got %d secrets from %d entries", len(secrets), len(strings.Split(in, ",")))
		}
		for _, s := range secrets {
			if len(s.key) < MinSecretLen {
				t.Fatalf("accepted a %d-byte key", len(s.key))
			}
		}
	})
}

func FuzzSign(f *testing.F) {
	f.Add([]byte("0123456789abcdef01234567"), "msg_p5jXN8AQM9LWM0D4loKWxJek", int64(1614265330), []byte(`{"test": 2432232314}`))
	f.Add(make([]byte, 64), "", int64(0), []byte{})
	f.Add([]byte("k"), "msg.with.dots", int64(-5), []byte("a.b.c"))
	f.Fuzz(func(t *testing.T, key []byte, id string, unix int64, body []byte) {
		for len(key) < MinSecretLen {
			key = append(key, 'k')
		}
		secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
		secrets, err := ParseSecrets(secret)
		if err != nil {
			t.Fatalf("ParseSecrets of a valid secret: %v", err)
		}
		ts := time.Unix(unix, 0)
		sig := Sign(secrets, id, ts, body)
		if sig != Sign(secrets, id, ts, body) {
			t.Fatal("Sign is not deterministic")
		}
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", strconv.FormatInt(unix, 10))
		h.Set("webhook-signature", sig)
		if id != "" && strings.TrimSpace(id) == id && !strings.ContainsAny(id, "\r\n\x00") {
			if err := verifyStandardWebhook([]string{secret}, h, body, ts, time.Second); err != nil {
				t.Fatalf("independent verifier refused: %v", err)
			}
		}
		if Sign(secrets, id, ts, append(append([]byte(nil), body...), 'x')) == sig {
			t.Fatal("a different body has the same signature")
		}
		if Sign(secrets, id, ts.Add(time.Second), body) == sig {
			t.Fatal("a different timestamp has the same signature")
		}
	})
}
