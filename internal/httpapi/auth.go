package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// authenticator checks bearer tokens in constant time: both sides are hashed (so
// lengths never leak) and every configured token is compared, without early exit.
type authenticator struct {
	sums [][sha256.Size]byte
}

func newAuthenticator(tokens []string) *authenticator {
	a := &authenticator{}
	for _, t := range tokens {
		a.sums = append(a.sums, sha256.Sum256([]byte(t)))
	}
	return a
}

// enabled reports whether tokens are configured.
func (a *authenticator) enabled() bool { return len(a.sums) > 0 }

// allow reports whether r carries one of the tokens (always true when none are
// configured).
func (a *authenticator) allow(r *http.Request) bool {
	if !a.enabled() {
		return true
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return false
	}
	sum := sha256.Sum256([]byte(token))
	match := 0
	for i := range a.sums {
		match |= subtle.ConstantTimeCompare(sum[:], a.sums[i][:])
	}
	return match == 1
}
