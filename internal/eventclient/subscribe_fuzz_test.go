package eventclient

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
)

// recordingModel is a read model that records what it is asked to apply.
type recordingModel struct{ applied []event.Stored }

func (m *recordingModel) Checkpoint(context.Context) (string, int64, error) {
	return "store-1", 10, nil
}
func (m *recordingModel) Reset(context.Context, string) error { return errors.New("not expected") }
func (m *recordingModel) Apply(_ context.Context, _ string, e event.Stored) error {
	m.applied = append(m.applied, e)
	return nil
}

// FuzzLiveEvent hands any body to a caught-up subscription as a message of its queue (from
// the store it follows, at position 10) and checks that a body that is not a valid stored
// event (event.ParseStored) is refused for the dead-letter queue (bus.ErrPermanent) and
// reaches no read model, and that a valid one is applied once, unless the feed gave it
// already (position 10 or below) and it is not a replayed dead letter.
// The seed corpus is in testdata/fuzz/FuzzLiveEvent.
func FuzzLiveEvent(f *testing.F) {
	f.Add([]byte(`{"id":"e1","stream":"order-1","version":1,"position":11,"type":"order.placed","data":{"quantity":2},"metadata":{"user":"ann"},"recorded_at":"2026-11-26T10:00:00.123Z"}`), false)
	f.Add([]byte(`{"id":"e1","stream":"order-1","version":1,"position":3,"type":"order.placed","data":{}}`), true)
	f.Add([]byte(`{"id":"e1","stream":"order-1","version":1,"position":3,"type":"order.placed","data":{}}`), false)
	f.Add([]byte(`{}`), true)
	f.Fuzz(func(t *testing.T, body []byte, replay bool) {
		rm := &recordingModel{}
		caughtUp := make(chan struct{})
		close(caughtUp)
		s := &subscriber{sub: Subscription{Name: "fuzz"}, rm: rm, logger: slog.New(slog.DiscardHandler),
			caughtUp: caughtUp, storeID: "store-1", applied: 10}
		headers := map[string]any{StoreIDHeader: "store-1"}
		if replay {
			headers[bus.ReplayHeader] = "1"
		}
		err := s.handleLive(context.Background(), bus.Delivery{Message: bus.Message{ID: "m1", Body: body, Headers: headers}})
		want, parseErr := event.ParseStored(body)
		switch {
		case parseErr != nil:
			if !errors.Is(err, bus.ErrPermanent) || len(rm.applied) > 0 {
				t.Fatalf("body %q (%v): got error %v and %d events applied, want a permanent error and none", body, parseErr, err, len(rm.applied))
			}
		case err != nil:
			t.Fatalf("body %q: got error %v for a valid event", body, err)
		case want.Position <= 10 && !replay:
			if len(rm.applied) > 0 {
				t.Fatalf("body %q: applied an event the feed gave already", body)
			}
		case len(rm.applied) != 1 || rm.applied[0].ID != want.ID || rm.applied[0].Position != want.Position:
			t.Fatalf("body %q: applied %+v, want the event once", body, rm.applied)
		}
	})
}
