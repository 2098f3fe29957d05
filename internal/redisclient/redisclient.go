// Package redisclient opens the Redis clients of the shop's components, the one way: the
// URL's errors and an unreachable server fail at start with a hint naming REDIS_URL.
package redisclient

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Open connects to the Redis at url (REDIS_URL) and pings it, within 5 s of ctx. tune,
// when not nil, changes the client's options first (timeouts, retries). The caller closes
// the client.
func Open(ctx context.Context, url string, tune func(*redis.Options)) (*redis.Client, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL %q: %w", url, err)
	}
	if tune != nil {
		tune(opts)
	}
	rdb := redis.NewClient(opts)
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pingCtx).Err(); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("redis not reachable at REDIS_URL=%s (start it with `redis-server --daemonize yes`): %w", url, err)
	}
	return rdb, nil
}
