package customer

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/testenv"
)

// An event the read model has moves only the checkpoint, and never back, without the
// whole Apply; one it lacks is applied.
func TestApplyKnownEventMovesOnlyTheCheckpoint(t *testing.T) {
	t.Parallel()
	prefix := testenv.Name(t) + ":"
	s := newStore(testRedis(t, prefix), prefix)
	p := &participant{users: s, logger: testenv.Logger(t)}
	ctx := t.Context()
	registered := func(position int64, credit int64) event.Stored {
		data, _ := json.Marshal(Registered{Username: "ann", FullName: "Ann", Email: "ann@example.com",
			PasswordHash: "x", Role: auth.Customer, CreditCents: credit})
		return event.Stored{ID: "e1", Stream: Stream("ann"), Version: 1, Position: position,
			Type: event.CustomerRegistered, Data: data}
	}
	check := func(wantPosition, wantCredit int64) {
		t.Helper()
		_, position, err := s.Checkpoint(ctx)
		if err != nil || position != wantPosition {
			t.Fatalf("checkpoint at %d (%v), want %d", position, err, wantPosition)
		}
		c, err := s.customer(ctx, s.rdb, "ann")
		if err != nil || c.Version != 1 || c.CreditCents != wantCredit {
			t.Fatalf("got customer %+v (%v), want version 1 with %d cents", c, err, wantCredit)
		}
	}
	if skipped, err := s.skipApplied(ctx, "store-1", "ann", registered(3, 500)); err != nil || skipped {
		t.Fatalf("a new event: skipped=%v (%v), want it left to Apply", skipped, err)
	}
	if err := p.Apply(ctx, "store-1", registered(3, 500)); err != nil {
		t.Fatal(err)
	}
	check(3, 500)
	if skipped, err := s.skipApplied(ctx, "store-1", "ann", registered(7, 999)); err != nil || !skipped {
		t.Fatalf("a known event: skipped=%v (%v), want it skipped", skipped, err)
	}
	check(7, 500)                                                       // known: its data is not applied
	if err := p.Apply(ctx, "store-1", registered(5, 999)); err != nil { // a replay behind the checkpoint
		t.Fatal(err)
	}
	check(7, 500)
}

// A checkpoint whose position is not a number is an error wherever it is read, not
// position 0 (which would apply every event again, as if the read model were empty).
func TestCorruptCheckpointIsAnError(t *testing.T) {
	t.Parallel()
	prefix := testenv.Name(t) + ":"
	rdb := testRedis(t, prefix)
	s := newStore(rdb, prefix)
	ctx := t.Context()
	if _, position, err := s.Checkpoint(ctx); err != nil || position != 0 {
		t.Fatalf("no checkpoint yet: got position %d, %v; want 0, nil", position, err)
	}
	for _, corrupt := range []string{"twelve", "-3", "1.5"} {
		if err := rdb.HSet(ctx, s.checkpointKey(), "store_id", "store-1", "position", corrupt).Err(); err != nil {
			t.Fatal(err)
		}
		if _, position, err := s.Checkpoint(ctx); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("position %q: Checkpoint got %d, %v; want an error saying it is corrupt", corrupt, position, err)
		}
		err := s.rdb.Watch(ctx, func(tx *redis.Tx) error {
			_, _, _, err := s.decisionInputs(ctx, tx, "ann", "order-1")
			return err
		}, s.checkpointKey())
		if err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("position %q: decisionInputs got %v, want an error saying it is corrupt", corrupt, err)
		}
		data, _ := json.Marshal(Registered{Username: "ann", FullName: "Ann", Email: "ann@example.com",
			PasswordHash: "x", Role: auth.Customer, CreditCents: 100})
		e := event.Stored{ID: "e1", Stream: Stream("ann"), Version: 1, Position: 9, Type: event.CustomerRegistered, Data: data}
		if err := s.Apply(ctx, "store-1", e); err == nil {
			t.Errorf("position %q: Apply moved a corrupt checkpoint", corrupt)
		}
	}
}
