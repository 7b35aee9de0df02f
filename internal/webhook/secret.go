package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SecretPrefix starts every Standard Webhooks signing secret.
const SecretPrefix = "whsec_"

// MinSecretLen is the shortest key (after base64 decoding) ParseSecrets accepts: 24
// bytes, the minimum the Standard Webhooks specification recommends.
const MinSecretLen = 24

// ErrNoSecret is returned by New when Config.Secrets is empty: webhooks are off.
var ErrNoSecret = errors.New("webhook: no signing secret configured (FACEIDQ_WEBHOOK_SECRET)")

// Secret is one signing key. Its String and GoString never reveal the key, so a Secret
// printed by mistake leaks nothing.
type Secret struct {
	key []byte
}

// String returns a redacted placeholder.
func (Secret) String() string { return SecretPrefix + "[redacted]" }

// GoString returns a redacted placeholder.
func (Secret) GoString() string { return "webhook.Secret{[redacted]}" }

// ParseSecrets parses FACEIDQ_WEBHOOK_SECRET: one or more "whsec_<base64 key>", separated
// by commas (several during a rotation: every one of them signs every message). Blank
// input yields no secrets and no error (webhooks off). Errors name the position of the bad
// secret, never its content.
func ParseSecrets(s string) ([]Secret, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]Secret, 0, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		key, err := decodeSecret(p)
		if err != nil {
			return nil, fmt.Errorf("webhook: secret %d of %d: %w", i+1, len(parts), err)
		}
		out = append(out, Secret{key: key})
	}
	return out, nil
}

func decodeSecret(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty")
	}
	b64, ok := strings.CutPrefix(s, SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("does not start with %q", SecretPrefix)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(b64)
	if err != nil {
		// Some generators drop the padding.
		if key, err = base64.RawStdEncoding.Strict().DecodeString(b64); err != nil {
			return nil, errors.New("key after the prefix is not base64")
		}
	}
	if len(key) < MinSecretLen {
		return nil, fmt.Errorf("key is %d bytes, want at least %d", len(key), MinSecretLen)
	}
	return key, nil
}

// Sign returns the value of the webhook-signature header for message id sent at ts with
// body: "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>" for each secret, separated by
// spaces. The timestamp is ts in unix seconds, exactly as in the webhook-timestamp header.
func Sign(secrets []Secret, id string, ts time.Time, body []byte) string {
	unix := strconv.FormatInt(ts.Unix(), 10)
	var sb strings.Builder
	for i, s := range secrets {
		mac := hmac.New(sha256.New, s.key)
		mac.Write([]byte(id))
		mac.Write([]byte{'.'})
		mac.Write([]byte(unix))
		mac.Write([]byte{'.'})
		mac.Write(body)
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString("v1,")
		sb.WriteString(base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	return sb.String()
}
