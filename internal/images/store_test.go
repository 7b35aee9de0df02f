package images

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/faceidq/faceidq/internal/keys"
	"github.com/faceidq/faceidq/internal/redistest"
)

func TestStore(t *testing.T) {
	ctx := context.Background()
	m := redistest.Mini(t)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	s := New(rdb, Config{TTL: time.Hour})
	img := strings.Repeat("QUJD", 1000)

	r1, err := s.Put(ctx, img)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := s.Put(ctx, img)
	if r1 != r2 || r1 != Ref(img) {
		t.Fatalf("refs differ: %s %s", r1, r2)
	}
	if got, err := s.Get(ctx, r1); err != nil || got != img {
		t.Fatalf("Get = %d bytes, %v", len(got), err)
	}
	if err := s.Release(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, r1); err != nil {
		t.Fatalf("image deleted while a reference remains: %v", err)
	}
	if err := s.Release(ctx, r1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, r1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after last release = %v, want ErrNotFound", err)
	}
	if m.Exists(keys.Image(r1)) {
		t.Fatal("image key still exists")
	}
	if err := s.Release(ctx, r1); err != nil {
		t.Fatalf("release of a gone image = %v", err)
	}

	t.Run("ttl expires a forgotten image", func(t *testing.T) {
		ref, _ := s.Put(ctx, "Zm9v")
		m.FastForward(2 * time.Hour)
		if _, err := s.Get(ctx, ref); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Get after TTL = %v", err)
		}
	})
}
