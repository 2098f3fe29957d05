package customer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/idgen"
	"github.com/msdemo/msdemo/internal/service"
)

// store is the customer read model in Redis, every key under one prefix:
//
//	<prefix>user:<username>  hash: username, full_name, email, password_hash, role,
//	                         credit_cents, version (the stream version applied last),
//	                         password_version (Customer.PasswordVersion)
//	<prefix>tokens-from:<username>
//	                         the password version of the last password change: tokens
//	                         of older versions are revoked (auth.RevocationKey); it
//	                         expires a token's life (tokenTTL) after the change
//	<prefix>users            sorted set of usernames, all scores 0: ordered by name
//	<prefix>reservations:<username>
//	                         hash: order id -> "<state> <amount_cents>", the customer's
//	                         answers to orders (Reservation), moved by its credit events
//	<prefix>checkpoint       hash: store_id, position
//	<prefix>schema           the version of this layout (schemaVersion; ensureSchema)
//	<prefix>schema-lock      held while one replica replaces a layout of another version
//
// It is safe for concurrent use. Only Apply and Reset write (and ensureSchema, before).
type store struct {
	rdb    *redis.Client
	prefix string
	// tokenTTL is the longest life of a token: how long a revocation is kept.
	tokenTTL time.Duration
}

var _ eventclient.ReadModel = (*store)(nil)

func newStore(rdb *redis.Client, prefix string) *store {
	return &store{rdb: rdb, prefix: prefix, tokenTTL: 24 * time.Hour}
}

func (s *store) userKey(username string) string { return s.prefix + "user:" + username }
func (s *store) usersKey() string               { return s.prefix + "users" }
func (s *store) checkpointKey() string          { return s.prefix + "checkpoint" }
func (s *store) schemaKey() string              { return s.prefix + "schema" }
func (s *store) schemaLockKey() string          { return s.prefix + "schema-lock" }
func (s *store) reservationsKey(username string) string {
	return s.prefix + "reservations:" + username
}

// Checkpoint returns the store id and the position of the last event applied.
func (s *store) Checkpoint(ctx context.Context) (string, int64, error) {
	return s.checkpoint(ctx, s.rdb)
}

// Apply applies e to its customer's hash (and reservations) and records (storeID,
// e.Position) as the checkpoint, both in one MULTI/EXEC transaction. The customer's
// version decides whether e was applied before (Customer.Apply); the keys are WATCHed so
// that a concurrent writer (a rebuild, a second replica taking over) makes the
// transaction start over instead of losing a change.
func (s *store) Apply(ctx context.Context, storeID string, e event.Stored) error {
	username, isCustomer := UsernameOf(e.Stream)
	keys := []string{s.checkpointKey()}
	if isCustomer {
		keys = append(keys, s.userKey(username), s.reservationsKey(username))
	}
	apply := func(tx *redis.Tx) error {
		var ch change
		if isCustomer {
			c, err := s.customer(ctx, tx, username)
			if err != nil {
				return err
			}
			if ch, err = (change{username: username, customer: c}).then(e); err != nil {
				return err
			}
		}
		_, position, err := s.checkpoint(ctx, tx)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			s.write(ctx, p, ch)
			p.HSet(ctx, s.checkpointKey(), "store_id", storeID, "position", max(position, e.Position))
			return nil
		})
		return err
	}
	if err := s.watch(ctx, apply, keys...); err != nil {
		return fmt.Errorf("apply %s (position %d): %w", e.Type, e.Position, err)
	}
	return nil
}

// skipApplied moves the checkpoint past e, an event of username's stream, in one round
// trip when the read model has it already (the service applies its own decisions at
// once), and reports whether it did; if not, e needs Apply.
func (s *store) skipApplied(ctx context.Context, storeID, username string, e event.Stored) (bool, error) {
	known, err := skipKnown.Run(ctx, s.rdb, []string{s.userKey(username), s.checkpointKey()},
		e.Version, storeID, e.Position).Int()
	if err != nil {
		return false, fmt.Errorf("apply %s (position %d): %w", e.Type, e.Position, err)
	}
	return known == 1, nil
}

// skipKnown moves the checkpoint (KEYS[2]) to position ARGV[3] of store ARGV[2], never
// back, when the customer (KEYS[1]) is at version ARGV[1] or later, and returns 1; it
// returns 0 and changes nothing otherwise. It runs atomically, in one round trip.
var skipKnown = redis.NewScript(`
local version = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if version < tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[2], 'store_id', ARGV[2])
if tonumber(redis.call('HGET', KEYS[2], 'position') or '0') < tonumber(ARGV[3]) then
	redis.call('HSET', KEYS[2], 'position', ARGV[3])
end
return 1
`)

// watch runs fn in a transaction that WATCHes keys, starting over (20 times at most) while
// another client changes them meanwhile.
func (s *store) watch(ctx context.Context, fn func(*redis.Tx) error, keys ...string) error {
	for range 20 {
		err := s.rdb.Watch(ctx, fn, keys...)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return errors.New("keys kept changing")
}

// change is what applying events did to one customer: its state after them, and the
// reservations they recorded. The zero change writes nothing.
type change struct {
	username     string
	customer     Customer
	applied      bool
	reservations []Reservation
	// passwordChangedAt is when the last customer.password-changed applied was stored
	// (zero: none was applied).
	passwordChangedAt time.Time
}

// then returns ch followed by e, an event of the customer's stream (changing nothing
// when it was applied before).
func (ch change) then(e event.Stored) (change, error) {
	next, applied, err := ch.customer.Apply(e)
	if err != nil || !applied {
		return ch, permanentIfMalformed(err)
	}
	r, isReservation, err := ReservationOf(e.Type, e.Data)
	if err != nil {
		return ch, fmt.Errorf("apply %s to %s version %d: %w", e.Type, e.Stream, e.Version, permanentIfMalformed(err))
	}
	ch.customer, ch.applied = next, true
	if e.Type == event.CustomerPasswordChanged {
		ch.passwordChangedAt = e.RecordedAt
	}
	if isReservation {
		ch.reservations = append(ch.reservations, r)
	}
	return ch, nil
}

// permanentIfMalformed marks err as a permanent failure (bus.ErrPermanent) when it says
// that an event's data does not decode: trying again cannot cure that, and would hold up
// every event after it, so the subscription dead-letters the event instead.
func permanentIfMalformed(err error) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &syntaxErr) || errors.As(err, &typeErr) {
		return fmt.Errorf("%w: %w", err, bus.ErrPermanent)
	}
	return err
}

// write queues the writes of ch on p.
func (s *store) write(ctx context.Context, p redis.Pipeliner, ch change) {
	if !ch.applied {
		return
	}
	username := ch.username
	p.HSet(ctx, s.userKey(username), encodeCustomer(ch.customer))
	p.ZAdd(ctx, s.usersKey(), redis.Z{Member: username})
	for _, r := range ch.reservations {
		p.HSet(ctx, s.reservationsKey(username), r.OrderID, fmt.Sprintf("%s %d", r.State, r.AmountCents))
	}
	// A password change revokes the older tokens for as long as they may live; a change
	// older than that (met again in a rebuild) needs no mark.
	if at := ch.passwordChangedAt; !at.IsZero() {
		if until := at.Add(s.tokenTTL); time.Until(until) > 0 {
			p.Set(ctx, auth.RevocationKey(s.prefix, username), ch.customer.PasswordVersion, time.Until(until)+time.Second)
		}
	}
}

// customer reads the customer username as Redis holds it (version 0: none).
func (s *store) customer(ctx context.Context, c redis.Cmdable, username string) (Customer, error) {
	fields, err := c.HGetAll(ctx, s.userKey(username)).Result()
	if err != nil {
		return Customer{}, fmt.Errorf("read customer %s: %w", username, err)
	}
	cust, err := decodeCustomer(fields)
	if err != nil {
		return Customer{}, fmt.Errorf("read customer %s: %w", username, err)
	}
	return cust, nil
}

// Reservations returns username's records of orders, by order id.
func (s *store) Reservations(ctx context.Context, username string) (map[string]Reservation, error) {
	all, err := s.rdb.HGetAll(ctx, s.reservationsKey(username)).Result()
	if err != nil {
		return nil, fmt.Errorf("read reservations of %s: %w", username, err)
	}
	rs := make(map[string]Reservation, len(all))
	for orderID, v := range all {
		if rs[orderID], err = decodeReservation(orderID, v); err != nil {
			return nil, fmt.Errorf("read reservations of %s: %w", username, err)
		}
	}
	return rs, nil
}

func decodeReservation(orderID, v string) (Reservation, error) {
	state, amount, _ := strings.Cut(v, " ")
	cents, err := strconv.ParseInt(amount, 10, 64)
	if err != nil {
		return Reservation{}, fmt.Errorf("malformed reservation %q: %w", v, err)
	}
	return Reservation{OrderID: orderID, AmountCents: cents, State: ReservationState(state)}, nil
}

// errStale says that an append found the customer's stream further on than the read
// model: the caller reads the stream (applyStream) and decides again.
var errStale = eventclient.ErrStale

// decideOrder applies e, an order event about username's order orderID, and the decision
// it leads to, in one transaction: it reads the customer and its record of the order,
// asks decide, and, when decide returns an event, write appends it. The stored event is
// applied with the checkpoint (e.Position) in one MULTI/EXEC, so the next decision about
// the customer sees it. When write returns nil (the stream has moved on, or the decision
// was stored before a crash), nothing is written and the error is errStale.
func (s *store) decideOrder(ctx context.Context, storeID string, e event.Stored, username, orderID string,
	decide func(Customer, Reservation) (event.New, bool),
	write func(context.Context, Customer, event.New) (*event.Stored, error)) error {
	apply := func(tx *redis.Tx) error {
		c, r, position, err := s.decisionInputs(ctx, tx, username, orderID)
		if err != nil {
			return err
		}
		ch := change{username: username, customer: c}
		if decision, ok := decide(c, r); ok {
			stored, err := write(ctx, c, decision)
			if err != nil {
				return err
			}
			if stored == nil {
				return errStale
			}
			if ch, err = ch.then(*stored); err != nil {
				return err
			}
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			s.write(ctx, p, ch)
			p.HSet(ctx, s.checkpointKey(), "store_id", storeID, "position", max(position, e.Position))
			return nil
		})
		return err
	}
	return s.watch(ctx, apply, s.userKey(username), s.reservationsKey(username), s.checkpointKey())
}

// decisionInputs reads, in one round trip, what a decision about username's order orderID
// is made on: the customer, its record of the order, and the checkpoint's position.
func (s *store) decisionInputs(ctx context.Context, tx *redis.Tx, username, orderID string) (Customer, Reservation, int64, error) {
	var user *redis.MapStringStringCmd
	var reservation *redis.StringCmd
	var checkpoint *redis.SliceCmd
	_, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
		user = p.HGetAll(ctx, s.userKey(username))
		reservation = p.HGet(ctx, s.reservationsKey(username), orderID)
		checkpoint = p.HMGet(ctx, s.checkpointKey(), "position")
		return nil
	})
	if err == nil || errors.Is(err, redis.Nil) { // a missing record is not an error; each command says
		err = cmp.Or(user.Err(), checkpoint.Err())
		if e := reservation.Err(); !errors.Is(e, redis.Nil) {
			err = cmp.Or(err, e)
		}
	}
	if err != nil {
		return Customer{}, Reservation{}, 0, fmt.Errorf("read customer %s for order %s: %w", username, orderID, err)
	}
	c, err := decodeCustomer(user.Val())
	if err != nil {
		return Customer{}, Reservation{}, 0, fmt.Errorf("read customer %s: %w", username, err)
	}
	var r Reservation
	if v := reservation.Val(); v != "" {
		if r, err = decodeReservation(orderID, v); err != nil {
			return Customer{}, Reservation{}, 0, err
		}
	}
	pos, _ := checkpoint.Val()[0].(string)
	position, err := parsePosition(pos)
	if err != nil {
		return Customer{}, Reservation{}, 0, err
	}
	return c, r, position, nil
}

// applyStream applies the events of username's stream that the read model lacks, without
// moving the checkpoint: the bus brings them again later, and they are skipped by version.
func (s *store) applyStream(ctx context.Context, username string, events []event.Stored) error {
	apply := func(tx *redis.Tx) error {
		c, err := s.customer(ctx, tx, username)
		if err != nil {
			return err
		}
		ch := change{username: username, customer: c}
		for _, e := range events {
			if ch, err = ch.then(e); err != nil {
				return err
			}
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			s.write(ctx, p, ch)
			return nil
		})
		return err
	}
	if err := s.watch(ctx, apply, s.userKey(username), s.reservationsKey(username)); err != nil {
		return fmt.Errorf("catch up customer %s: %w", username, err)
	}
	return nil
}

func (s *store) checkpoint(ctx context.Context, c redis.Cmdable) (string, int64, error) {
	v, err := c.HMGet(ctx, s.checkpointKey(), "store_id", "position").Result()
	if err != nil {
		return "", 0, fmt.Errorf("read checkpoint: %w", err)
	}
	storeID, _ := v[0].(string)
	pos, _ := v[1].(string)
	position, err := parsePosition(pos)
	if err != nil {
		return "", 0, err
	}
	return storeID, position, nil
}

// parsePosition reads the checkpoint's position field: "" (no checkpoint yet) is 0, and
// anything but a whole number >= 0 is an error, not 0, which would apply every event
// again from the start.
func parsePosition(v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	position, err := strconv.ParseInt(v, 10, 64)
	if err != nil || position < 0 {
		return 0, fmt.Errorf("read checkpoint: corrupt position %q", v)
	}
	return position, nil
}

// schemaVersion is the version of the key layout (see store). Raise it with every change
// of what the keys hold: the read model is then rebuilt from the events at start.
const schemaVersion = 2 // 2: password_version, tokens-from

// schemaLockTTL bounds how long a replica that died while replacing the layout holds the
// others back.
const schemaLockTTL = time.Minute

// recordSchema records the schema version (KEYS[2] = ARGV[2]) and releases the schema lock
// (KEYS[1]), only if the lock is still the caller's (ARGV[1]): a replica whose lock
// expired while it emptied the read model records nothing (0), since another may be
// emptying it under it.
var recordSchema = redis.NewScript(`
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("SET", KEYS[2], ARGV[2])
redis.call("DEL", KEYS[1])
return 1`)

// releaseSchemaLock releases the schema lock (KEYS[1]) if it is still the caller's
// (ARGV[1]).
var releaseSchemaLock = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end
return 0`)

// ensureSchema makes the read model's layout the one of schemaVersion and reports
// whether it emptied it. When the stored version differs (none: new keys, or keys made
// before versions; another: an older or newer build's), it deletes the read model (as
// Reset does, checkpoint at 0) and records schemaVersion; the subscription then rebuilds
// the read model from the events as it catches up. One replica at a time does that
// (schema-lock); the others wait until the version is current; the lock is the
// taker's own (a random token), so a replica whose lock expired never releases another's
// nor records the version over another's emptying.
func (s *store) ensureSchema(ctx context.Context) (emptied bool, err error) {
	want := strconv.Itoa(schemaVersion)
	for {
		v, err := s.rdb.Get(ctx, s.schemaKey()).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return false, fmt.Errorf("read the schema version: %w", err)
		}
		if v == want {
			return false, nil
		}
		token := idgen.New()
		locked, err := s.rdb.SetNX(ctx, s.schemaLockKey(), token, schemaLockTTL).Result()
		if err != nil {
			return false, fmt.Errorf("lock the schema: %w", err)
		}
		if !locked { // another replica replaces it: wait for it
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		err = s.Reset(ctx, "")
		if err == nil {
			var recorded int
			recorded, err = recordSchema.Run(ctx, s.rdb, []string{s.schemaLockKey(), s.schemaKey()}, token, want).Int()
			if err == nil && recorded == 0 {
				err = errors.New("the schema lock expired while the read model was emptied, and another replica may be emptying it now")
			}
		} else {
			_ = releaseSchemaLock.Run(context.WithoutCancel(ctx), s.rdb, []string{s.schemaLockKey()}, token).Err()
		}
		if err != nil {
			return false, fmt.Errorf("replace the read model of schema version %q: %w", v, err)
		}
		return true, nil
	}
}

// Reset deletes every key of the read model (SCAN and UNLINK, never KEYS, so Redis keeps
// serving meanwhile), all under the prefix but the schema version and its lock, and
// records storeID at position 0 as the checkpoint.
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
		if key := iter.Val(); key == s.schemaKey() || key == s.schemaLockKey() {
			continue
		}
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
		// Unknown, or the whole read model is gone (lost.go): not "wrong password" then.
		if lost, err := s.lost(ctx); err != nil || lost {
			return Customer{}, fmt.Errorf("customer %s: the read model is not in Redis (%v): %w", username, err, service.ErrUnavailable)
		}
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
		"credit_cents":     strconv.FormatInt(c.CreditCents, 10),
		"version":          strconv.FormatInt(c.Version, 10),
		"password_version": strconv.FormatInt(c.PasswordVersion, 10),
	}
}

// decodeCustomer reads a user hash; an empty one is the zero Customer (version 0).
func decodeCustomer(h map[string]string) (Customer, error) {
	if len(h) == 0 {
		return Customer{}, nil
	}
	credit, err1 := strconv.ParseInt(h["credit_cents"], 10, 64)
	version, err2 := strconv.ParseInt(h["version"], 10, 64)
	passwordVersion, err3 := strconv.ParseInt(h["password_version"], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Customer{}, fmt.Errorf("malformed user hash: %w", err)
	}
	return Customer{Username: h["username"], FullName: h["full_name"], Email: h["email"],
		PasswordHash: h["password_hash"], Role: auth.Role(h["role"]), CreditCents: credit, Version: version,
		PasswordVersion: passwordVersion}, nil
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
