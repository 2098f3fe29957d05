package auth

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msdemo/msdemo/internal/redisclient"
)

// Token revocation. A token carries the version of its user's password (Claims.
// PasswordVersion). When a user changes their password, the customer service records the
// new password's version under RevocationKey in Redis, with the change, in the
// transaction that applies it to its read model; the key lives as long as a token may
// (it expires TokenTTL after the change). Every replica of every component that checks
// it (the gateway, the customer service, the sites' sessions) reads the same key, so a
// change revokes the user's older tokens everywhere at once. A user without the key has
// never changed their password within a token's life: every token of theirs that
// verifies is good.

// RevokedMessage is the 401 answer's message for a token that a password change revoked.
const RevokedMessage = "token revoked by a password change: log in again"

// DefaultRevocationPrefix is the Redis key prefix of the revocation marks when the
// customer service runs with its default key prefix.
const DefaultRevocationPrefix = "msdemo:customer:"

// RevocationKey is the Redis key, under prefix (the customer service's key prefix),
// that holds the least password version of user's valid tokens.
func RevocationKey(prefix, user string) string { return prefix + "tokens-from:" + user }

// OpenRevocations connects to the Redis at url (REDIS_URL), failing with a hint when it is
// not reachable, and returns a reader of the marks under prefix, as NewRevocations, and
// the function that closes its connection.
func OpenRevocations(ctx context.Context, url, prefix string, cacheFor time.Duration) (*Revocations, func() error, error) {
	// Fail fast while Redis is down, instead of holding the request for the default
	// timeouts and retries (seconds).
	rdb, err := redisclient.Open(ctx, url, func(opts *redis.Options) {
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout, opts.MaxRetries = time.Second, time.Second, time.Second, 1
	})
	if err != nil {
		return nil, nil, err
	}
	return NewRevocations(rdb, prefix, cacheFor), rdb.Close, nil
}

// Revocations reads the revocation marks. It is safe for concurrent use.
type Revocations struct {
	rdb      redis.Cmdable
	prefix   string
	cacheFor time.Duration

	mu    sync.Mutex
	cache map[string]revocationEntry
}

type revocationEntry struct {
	from    int64 // least valid password version
	fetched time.Time
}

// maxCachedUsers bounds the cache of Revocations; a full cache is emptied.
const maxCachedUsers = 10_000

// NewRevocations returns a reader of the marks under prefix in rdb. cacheFor > 0 keeps
// what it read of a user for that long, so a revocation takes up to cacheFor to reach
// that reader (the gateway, which checks every request, caches for a second); 0 reads
// Redis on every check.
func NewRevocations(rdb redis.Cmdable, prefix string, cacheFor time.Duration) *Revocations {
	return &Revocations{rdb: rdb, prefix: prefix, cacheFor: cacheFor, cache: map[string]revocationEntry{}}
}

// Check returns ErrRevokedToken when c's password version is older than the least valid
// one of c.User, nil when the token is not revoked, and another error when Redis cannot
// say and the reader has nothing of c.User cached (see validFrom; the caller refuses the
// token then).
func (r *Revocations) Check(ctx context.Context, c Claims) error {
	from, err := r.validFrom(ctx, c.User)
	if err != nil {
		return err
	}
	if c.PasswordVersion < from {
		return ErrRevokedToken
	}
	return nil
}

// validFrom returns the least password version of user's valid tokens (0: any). A
// caching reader whose Redis fails answers what it read last of user, however old: a
// change cannot be recorded while Redis is down either, and the users it has seen go on
// through a restart of Redis; a user it has not seen gets the error.
func (r *Revocations) validFrom(ctx context.Context, user string) (int64, error) {
	now := time.Now()
	var cached revocationEntry
	var isCached bool
	if r.cacheFor > 0 {
		r.mu.Lock()
		cached, isCached = r.cache[user]
		r.mu.Unlock()
		if isCached && now.Sub(cached.fetched) < r.cacheFor {
			return cached.from, nil
		}
	}
	v, err := r.rdb.Get(ctx, RevocationKey(r.prefix, user)).Result()
	var from int64
	switch {
	case errors.Is(err, redis.Nil):
		// No mark: none was ever written, or Redis lost it (a restart without
		// persistence) until the customer service's rebuild writes it again. Versions
		// only rise, so what was read before still holds.
		from = cached.from
	case err != nil && isCached:
		return cached.from, nil
	case err != nil:
		return 0, fmt.Errorf("read token revocation of %s: %w", user, err)
	default:
		if from, err = strconv.ParseInt(v, 10, 64); err != nil {
			return 0, fmt.Errorf("read token revocation of %s: corrupt value %q", user, v)
		}
	}
	if r.cacheFor > 0 {
		r.mu.Lock()
		if len(r.cache) >= maxCachedUsers {
			clear(r.cache)
		}
		r.cache[user] = revocationEntry{from: from, fetched: now}
		r.mu.Unlock()
	}
	return from, nil
}
