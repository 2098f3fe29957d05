package customer

import (
	"encoding/json"
	"testing"

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
