package customer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/service"
)

// store is the customer read model in Redis, every key under one prefix:
//
//	<prefix>user:<username>  hash: username, full_name, email, password_hash, role,
//	                         credit_cents, version (the stream version applied last)
//	<prefix>users            sorted set of usernames, all scores 0: ordered by name
//	<prefix>checkpoint       hash: store_id, position
//
// It is safe for concurrent use. Only Apply and Reset write.
type store struct {
	rdb    *redis.Client
	prefix string
}

var _ eventclient.ReadModel = (*store)(nil)

func newStore(rdb *redis.Client, prefix string) *store { return &store{rdb: rdb, prefix: prefix} }

func (s *store) userKey(username string) string { return s.prefix + "user:" + username }
func (s *store) usersKey() string               { return s.prefix + "users" }
func (s *store) checkpointKey() string          { return s.prefix + "checkpoint" }

// Checkpoint returns the store id and the position of the last event applied.
func (s *store) Checkpoint(ctx context.Context) (string, int64, error) {
	return s.checkpoint(ctx, s.rdb)
}

// Position returns the checkpoint's position, for service.Runtime.Checkpoint.
func (s *store) Position(ctx context.Context) (int64, error) {
	_, pos, err := s.Checkpoint(ctx)
	return pos, err
}

// Apply applies e to its customer's hash and records (storeID, e.Position) as the
// checkpoint, both in one MULTI/EXEC transaction. The customer's version decides whether
// e was applied before (Customer.Apply); the keys are WATCHed so that a concurrent writer
// (a rebuild, a second replica taking over) makes the transaction start over instead of
// losing a change.
func (s *store) Apply(ctx context.Context, storeID string, e event.Stored) error {
	username, isCustomer := UsernameOf(e.Stream)
	key := s.userKey(username)
	apply := func(tx *redis.Tx) error {
		var next Customer
		applied := false
		if isCustomer {
			fields, err := tx.HGetAll(ctx, key).Result()
			if err != nil {
				return err
			}
			c, err := decodeCustomer(fields)
			if err != nil {
				return fmt.Errorf("read %s: %w", key, err)
			}
			if next, applied, err = c.Apply(e); err != nil {
				return err
			}
		}
		_, position, err := s.checkpoint(ctx, tx)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if applied {
				p.HSet(ctx, key, encodeCustomer(next))
				p.ZAdd(ctx, s.usersKey(), redis.Z{Member: username})
			}
			p.HSet(ctx, s.checkpointKey(), "store_id", storeID, "position", max(position, e.Position))
			return nil
		})
		return err
	}
	for range 20 {
		err := s.rdb.Watch(ctx, apply, key, s.checkpointKey())
		if !errors.Is(err, redis.TxFailedErr) {
			if err != nil {
				return fmt.Errorf("apply %s (position %d): %w", e.Type, e.Position, err)
			}
			return nil
		}
	}
	return fmt.Errorf("apply %s (position %d): keys kept changing", e.Type, e.Position)
}

func (s *store) checkpoint(ctx context.Context, c redis.Cmdable) (string, int64, error) {
	v, err := c.HMGet(ctx, s.checkpointKey(), "store_id", "position").Result()
	if err != nil {
		return "", 0, fmt.Errorf("read checkpoint: %w", err)
	}
	storeID, _ := v[0].(string)
	pos, _ := v[1].(string)
	position, _ := strconv.ParseInt(pos, 10, 64)
	return storeID, position, nil
}

// Reset deletes every key under the prefix (SCAN and UNLINK, never KEYS, so Redis keeps
// serving meanwhile) and records storeID at position 0 as the checkpoint.
func (s *store) Reset(ctx context.Context, storeID string) error {
	iter := s.rdb.Scan(ctx, 0, globEscape(s.prefix)+"*", 1000).Iterator()
	var batch []string
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := s.rdb.Unlink(ctx, batch...).Err()
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := flush(); err != nil {
				return fmt.Errorf("delete read model keys: %w", err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scan read model keys: %w", err)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("delete read model keys: %w", err)
	}
	if err := s.rdb.HSet(ctx, s.checkpointKey(), "store_id", storeID, "position", 0).Err(); err != nil {
		return fmt.Errorf("reset checkpoint: %w", err)
	}
	return nil
}

// Customer returns the customer username, or service.ErrNotFound.
func (s *store) Customer(ctx context.Context, username string) (Customer, error) {
	fields, err := s.rdb.HGetAll(ctx, s.userKey(username)).Result()
	if err != nil {
		return Customer{}, fmt.Errorf("read customer %s: %w", username, err)
	}
	c, err := decodeCustomer(fields)
	if err != nil {
		return Customer{}, fmt.Errorf("read customer %s: %w", username, err)
	}
	if c.Version == 0 {
		return Customer{}, fmt.Errorf("customer %s: %w", username, service.ErrNotFound)
	}
	return c, nil
}

// Customers returns up to limit customers ordered by username, starting after the
// username after ("" = from the first), and the username to pass as after for the next
// page ("" when this is the last).
func (s *store) Customers(ctx context.Context, after string, limit int) ([]Customer, string, error) {
	from := "-"
	if after != "" {
		from = "(" + after
	}
	names, err := s.rdb.ZRangeByLex(ctx, s.usersKey(), &redis.ZRangeBy{Min: from, Max: "+", Count: int64(limit) + 1}).Result()
	if err != nil {
		return nil, "", fmt.Errorf("list customers: %w", err)
	}
	next := ""
	if len(names) > limit {
		names, next = names[:limit], names[limit-1]
	}
	cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, name := range names {
			p.HGetAll(ctx, s.userKey(name))
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list customers: %w", err)
	}
	list := make([]Customer, 0, len(cmds))
	for _, cmd := range cmds {
		c, err := decodeCustomer(cmd.(*redis.MapStringStringCmd).Val())
		if err != nil {
			return nil, "", fmt.Errorf("list customers: %w", err)
		}
		list = append(list, c)
	}
	return list, next, nil
}

// Dump returns every customer hash as Redis holds it, by username (tests compare a read
// model with its rebuild).
func (s *store) Dump(ctx context.Context) (map[string]map[string]string, error) {
	all := map[string]map[string]string{}
	for after := ""; ; {
		page, next, err := s.Customers(ctx, after, 500)
		if err != nil {
			return nil, err
		}
		for _, c := range page {
			all[c.Username] = encodeCustomer(c)
		}
		if next == "" {
			return all, nil
		}
		after = next
	}
}

func encodeCustomer(c Customer) map[string]string {
	return map[string]string{
		"username": c.Username, "full_name": c.FullName, "email": c.Email,
		"password_hash": c.PasswordHash, "role": string(c.Role),
		"credit_cents": strconv.FormatInt(c.CreditCents, 10),
		"version":      strconv.FormatInt(c.Version, 10),
	}
}

// decodeCustomer reads a user hash; an empty one is the zero Customer (version 0).
func decodeCustomer(h map[string]string) (Customer, error) {
	if len(h) == 0 {
		return Customer{}, nil
	}
	credit, err1 := strconv.ParseInt(h["credit_cents"], 10, 64)
	version, err2 := strconv.ParseInt(h["version"], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Customer{}, fmt.Errorf("malformed user hash: %w", err)
	}
	return Customer{Username: h["username"], FullName: h["full_name"], Email: h["email"],
		PasswordHash: h["password_hash"], Role: auth.Role(h["role"]), CreditCents: credit, Version: version}, nil
}

// globEscape escapes the characters that SCAN MATCH reads as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
