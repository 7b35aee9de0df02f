package tasks

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// idEncoding is lowercase base32 without padding: 26 characters for 16 bytes.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewJobID returns a new unguessable JobId: "j_" and 128 random bits from crypto/rand.
func NewJobID() string { return "j_" + randomID() }

// NewBatchID returns a new BatchId: "b_" and 128 random bits.
func NewBatchID() string { return "b_" + randomID() }

// NewLinkID returns a new start-link id: "l_" and 128 random bits.
func NewLinkID() string { return "l_" + randomID() }

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return idEncoding.EncodeToString(b[:])
}

// ValidID reports whether id has the shape of an id made by NewJobID, NewBatchID or
// NewLinkID with the given prefix ("j_", "b_", "l_"). It keeps arbitrary input out of
// Redis key names.
func ValidID(prefix, id string) bool {
	if !strings.HasPrefix(id, prefix) || len(id) != len(prefix)+26 {
		return false
	}
	for _, c := range id[len(prefix):] {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}
