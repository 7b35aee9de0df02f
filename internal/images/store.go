// Package images keeps CompareImageBase64 payloads out of the queue. An image is
// stored once, addressed by the SHA-256 of its content, with a reference count and a
// TTL; a job's task carries only the reference. Each job releases its reference as
// soon as it is final, and the image is deleted when the last reference goes: face
// images are biometric data, kept no longer than needed. The TTL deletes images whose
// jobs' processes died before they could release them.
package images

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
)

// ErrNotFound is returned when an image is gone (released or expired).
var ErrNotFound = errors.New("images: image not found")

// DefaultTTL bounds how long an image may wait for its job when Config.TTL is zero.
const DefaultTTL = 24 * time.Hour

// Config configures a Store.
type Config struct {
	// TTL is the longest an image is kept; every Put extends it. Defaults to DefaultTTL.
	TTL time.Duration
}

// Store stores images in Redis.
type Store struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

// New returns a Store on rdb.
func New(rdb redis.UniversalClient, cfg Config) *Store {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	return &Store{rdb: rdb, ttl: cfg.TTL}
}

// Ref returns the reference (hex SHA-256) of an image.
func Ref(b64 string) string {
	sum := sha256.Sum256([]byte(b64))
	return hex.EncodeToString(sum[:])
}

// put stores the data once and counts one more reference. KEYS[1] image hash;
// ARGV[1] data, ARGV[2] TTL ms.
var put = redis.NewScript(`
redis.call('HSETNX', KEYS[1], 'data', ARGV[1])
local n = redis.call('HINCRBY', KEYS[1], 'refs', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return n
`)

// Put stores b64 (or counts one more reference to the same content) and returns its
// reference.
func (s *Store) Put(ctx context.Context, b64 string) (string, error) {
	ref := Ref(b64)
	if err := put.Run(ctx, s.rdb, []string{keys.Image(ref)}, b64, s.ttl.Milliseconds()).Err(); err != nil {
		return "", fmt.Errorf("images: put %s: %w", short(ref), err)
	}
	return ref, nil
}

// Get returns the image with reference ref, or ErrNotFound.
func (s *Store) Get(ctx context.Context, ref string) (string, error) {
	b64, err := s.rdb.HGet(ctx, keys.Image(ref), "data").Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("images: get %s: %w", short(ref), err)
	}
	return b64, nil
}

// release drops one reference and deletes the image with the last one.
var release = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local n = redis.call('HINCRBY', KEYS[1], 'refs', -1)
if n <= 0 then redis.call('DEL', KEYS[1]) end
return n
`)

// Release drops one reference to ref; the image is deleted when none is left.
// Releasing an image that is already gone is not an error.
func (s *Store) Release(ctx context.Context, ref string) error {
	if err := release.Run(ctx, s.rdb, []string{keys.Image(ref)}).Err(); err != nil {
		return fmt.Errorf("images: release %s: %w", short(ref), err)
	}
	return nil
}

// short abbreviates a reference for error messages.
func short(ref string) string {
	if len(ref) > 12 {
		return ref[:12]
	}
	return ref
}
