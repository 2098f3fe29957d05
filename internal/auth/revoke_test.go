package auth_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/testenv"
)

// Check against a real Redis: no mark accepts every version, a mark refuses the older
// ones; a cached reader sees a new mark only after cacheFor, an uncached one at once; a
// Redis that cannot answer is an error, never a pass.
func TestRevocations(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis; skipped with -short")
	}
	opts, err := redis.ParseURL(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis not reachable at REDIS_URL (start it with `redis-server --daemonize yes`): %v", err)
	}
	prefix := testenv.Name(t) + ":"
	key := auth.RevocationKey(prefix, "ann")
	t.Cleanup(func() { rdb.Del(context.Background(), key) })

	exact := auth.NewRevocations(rdb, prefix, 0)
	cached := auth.NewRevocations(rdb, prefix, time.Hour)
	ann := func(version int64) auth.Claims { return auth.Claims{User: "ann", PasswordVersion: version} }
	check := func(r *auth.Revocations, name string, c auth.Claims, want error) {
		t.Helper()
		if err := r.Check(ctx, c); !errors.Is(err, want) {
			t.Errorf("%s, version %d: got %v, want %v", name, c.PasswordVersion, err, want)
		}
	}
	check(exact, "no mark", ann(0), nil)
	check(cached, "no mark, cached", ann(1), nil)

	rdb.Set(ctx, key, 5, time.Minute)
	check(exact, "mark 5", ann(4), auth.ErrRevokedToken)
	check(exact, "mark 5", ann(0), auth.ErrRevokedToken)
	check(exact, "mark 5", ann(5), nil)
	check(exact, "another user", auth.Claims{User: "bob", PasswordVersion: 1}, nil)
	check(cached, "mark 5 within the cache's second", ann(1), nil) // what the gateway may answer for cacheFor

	rdb.Set(ctx, key, "garbage", time.Minute)
	if err := exact.Check(ctx, ann(9)); err == nil || errors.Is(err, auth.ErrRevokedToken) {
		t.Errorf("a corrupt mark: got %v, want an error that is not a revocation", err)
	}

	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer down.Close()
	if err := auth.NewRevocations(down, prefix, 0).Check(ctx, ann(9)); err == nil || errors.Is(err, auth.ErrRevokedToken) {
		t.Errorf("Redis down: got %v, want an error that is not a revocation", err)
	}

	// A caching reader whose Redis goes down answers what it read last of a user (past
	// cacheFor), and an error for a user it never read.
	rdb.Set(ctx, key, 5, time.Minute)
	opts.MaxRetries = -1
	lost := redis.NewClient(opts)
	short := auth.NewRevocations(lost, prefix, time.Millisecond)
	check(short, "mark 5 read", ann(4), auth.ErrRevokedToken)
	lost.Close() // every command fails from now on
	time.Sleep(2 * time.Millisecond)
	check(short, "mark 5 read, Redis gone", ann(4), auth.ErrRevokedToken)
	check(short, "mark 5 read, Redis gone", ann(5), nil)
	if err := short.Check(ctx, auth.Claims{User: "bob", PasswordVersion: 1}); err == nil || errors.Is(err, auth.ErrRevokedToken) {
		t.Errorf("Redis gone, a user never read: got %v, want an error that is not a revocation", err)
	}
}

// A token carries its password version, and Verify reads it back.
func TestPasswordVersionClaim(t *testing.T) {
	key, err := auth.NewKey([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, v := range []int64{0, 1, 42} {
		c, err := key.Verify(key.Sign(auth.Claims{User: "ann", Role: auth.Customer, ExpiresAt: now.Add(time.Hour), PasswordVersion: v}), now)
		if err != nil || c.PasswordVersion != v {
			t.Errorf("password version %d: got %d, %v", v, c.PasswordVersion, err)
		}
	}
}
