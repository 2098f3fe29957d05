package order

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/testenv"
)

// openTestStore opens a read model in a database of t's own, dropped when t ends.
func openTestStore(t testing.TB) *Store {
	t.Helper()
	database := testenv.DatabaseName(t, "order")
	store, err := OpenStore(t.Context(), testenv.PostgresURL(), database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		store.Close()
		if err := postgres.Drop(context.Background(), testenv.PostgresURL(), database); err != nil {
			t.Errorf("drop %s: %v", database, err)
		}
	})
	return store
}

// An own event that the read model has, and that cannot decide anything, only moves the
// checkpoint and its step's time; any other needs the whole treatment.
func TestSkipAppliedOnlyWhenNothingCanBeDecided(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := openTestStore(t)
	storeID, id := "store-1", newOrderID()
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	stored := func(position, version int64, stream, typ string, data any) event.Stored {
		raw, _ := json.Marshal(data)
		return event.Stored{ID: typ + stream, Stream: stream, Version: version, Position: position, Type: typ,
			Data: raw, RecordedAt: at.Add(time.Duration(position) * time.Second)}
	}
	placed := func(position int64) event.Stored {
		return stored(position, 1, Stream(id), event.OrderPlaced, Placed{OrderID: id, Customer: "ann", OrderLines: event.OrderLines{Lines: []Line{{ProductID: "p1", Quantity: 1, UnitPriceCents: 100}}},
			TotalCents: 100})
	}
	approved := func(position int64) event.Stored { return stored(position, 2, Stream(id), event.OrderApproved, nil) }
	check := func(e event.Stored, want bool) {
		t.Helper()
		got, err := store.skipApplied(ctx, storeID, id, e)
		if err != nil || got != want {
			t.Fatalf("skipApplied(%s at position %d) = %v, %v; want %v", e.Type, e.Position, got, err, want)
		}
		_, position, _ := store.Checkpoint(ctx)
		if moved := position == e.Position; moved != want {
			t.Fatalf("after skipApplied(%s at %d) the checkpoint is %d", e.Type, e.Position, position)
		}
	}
	apply := func(e event.Stored) {
		t.Helper()
		if err := store.Apply(ctx, storeID, e); err != nil {
			t.Fatal(err)
		}
	}

	check(placed(1), false) // not applied yet
	apply(placed(1))
	check(placed(2), true) // applied, nobody answered: moves on, with the stored time
	o, err := store.Order(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(o.Timeline, func(e TimelineEntry) bool { return e.Step == StepPlaced }); i < 0 ||
		!o.Timeline[i].At.Equal(placed(2).RecordedAt) {
		t.Errorf("timeline %+v, want the placed step at the event's recorded_at %v", o.Timeline, placed(2).RecordedAt)
	}
	apply(stored(3, 1, "product-p1", event.ProductStockReserved, Reply{OrderID: id}))
	check(placed(4), false)   // pending with an answer: it may decide
	check(approved(5), false) // not applied yet
	apply(approved(5))
	check(approved(6), true) // decided
}

// Requests wait for a decision only while a slot is free; one beyond the bound is
// answered at once, without Preference-Applied.
func TestWaitingRequestsAreBounded(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := openTestStore(t)
	id := newOrderID()
	data, _ := json.Marshal(Placed{OrderID: id, Customer: "ann", OrderLines: event.OrderLines{Lines: []Line{{ProductID: "p1", Quantity: 1, UnitPriceCents: 100}}}, TotalCents: 100})
	if err := store.Apply(ctx, "store-1", event.Stored{ID: "e1", Stream: Stream(id), Version: 1, Position: 1,
		Type: event.OrderPlaced, Data: data, RecordedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	watch := newOrderWatch(1)
	router := chi.NewRouter()
	router.Method(http.MethodGet, "/orders/{id}", handleOrderShow(store, watch, testenv.Logger(t)))
	get := func(ctx context.Context) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(auth.WithClaims(ctx, auth.Claims{User: "ann", Role: auth.Customer}),
			http.MethodGet, "/orders/"+string(id), nil)
		req.Header.Set("Prefer", "wait=20")
		rec := httptest.NewRecorder()
		router.ServeHTTP(rec, req)
		return rec
	}

	waiterCtx, stopWaiter := context.WithCancel(ctx)
	waiter := make(chan *httptest.ResponseRecorder)
	go func() { waiter <- get(waiterCtx) }()
	testenv.Eventually(t, 5*time.Second, "the first request waits", func() bool { return len(watch.waiting) == 1 })
	if rec := get(ctx); rec.Code != http.StatusOK || rec.Header().Get("Preference-Applied") != "" {
		t.Errorf("second request: got %d with Preference-Applied %q, want 200 at once without it",
			rec.Code, rec.Header().Get("Preference-Applied"))
	}
	stopWaiter()
	<-waiter
	if len(watch.waiting) != 0 {
		t.Errorf("the ended wait did not give its slot back")
	}
}

// A timeline is in the order of its events' positions in the event store, which is
// causal (an event is appended after the one that caused it), whatever their times say:
// the services' clocks may disagree, and steps may share a millisecond. Each line of an
// order has its own stock step.
func TestTimelineInCausalOrder(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	store := openTestStore(t)
	id := newOrderID()
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	apply := func(position, version int64, stream, typ string, data any) {
		t.Helper()
		raw, _ := json.Marshal(data)
		e := event.Stored{ID: typ + stream, Stream: stream, Version: version, Position: position, Type: typ,
			Data: raw, RecordedAt: at.Add(-time.Duration(position%2) * time.Second)} // clocks that disagree
		if err := store.Apply(ctx, "store-1", e); err != nil {
			t.Fatal(err)
		}
	}
	apply(1, 1, Stream(id), event.OrderPlaced, Placed{OrderID: id, Customer: "ann", OrderLines: event.OrderLines{
		Lines: []Line{{ProductID: "p1", Quantity: 1, UnitPriceCents: 100}, {ProductID: "p2", Quantity: 1, UnitPriceCents: 100}}},
		TotalCents: 200})
	apply(2, 1, "product-p1", event.ProductStockReserved, Reply{OrderID: id})
	apply(3, 1, "customer-ann", event.CustomerCreditReserved, Reply{OrderID: id})
	apply(4, 1, "product-p2", event.ProductStockRejected, Reply{OrderID: id, Reason: "out of stock"})
	apply(5, 2, Stream(id), event.OrderRejected, RejectedData{OrderID: id, Customer: "ann", Reason: "out of stock"})
	apply(6, 2, "customer-ann", event.CustomerCreditReleased, Reply{OrderID: id})
	apply(7, 2, "product-p1", event.ProductStockReleased, Reply{OrderID: id})
	o, err := store.Order(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range o.Timeline {
		got = append(got, strings.TrimSpace(string(e.Step)+" "+e.ProductID))
	}
	want := []string{"placed", "stock reserved p1", "credit reserved", "stock rejected p2", "rejected",
		"credit released", "stock released p1"}
	if !slices.Equal(got, want) {
		t.Errorf("timeline %v, want %v", got, want)
	}
}
