package service

import (
	"context"
	"errors"
	"testing"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/testenv"
)

// A write that gets no answer is ErrUnavailable and still carries its cause, and the
// caller's events are left as they were (the metadata goes on a copy). The whole write
// path against a real event store is tested in systest (TestWriteThroughTheGateway).
func TestWriteKeepsTheCauseAndTheCallersEvents(t *testing.T) {
	t.Parallel()
	conn := testenv.Bus(t)
	name := testenv.Name(t)
	rt := &Runtime{Logger: testenv.Logger(t), Bus: conn, Progress: eventclient.NewProgress(),
		Events: eventclient.New(conn, "", name+".append", name+".events")}
	events := []event.New{NewEvent("thing.added", map[string]int{"n": 1}), NewEvent("thing.added", map[string]int{"n": 2})}
	before := append([]event.New(nil), events...)
	ctx, cancel := context.WithCancel(auth.WithClaims(context.Background(), auth.Claims{User: "ann", Role: auth.Customer}))
	cancel()

	_, err := rt.Write(ctx, "thing-1", nil, events...)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("got error %v, want one wrapping ErrUnavailable and context.Canceled", err)
	}
	for i := range events {
		if events[i].Metadata != before[i].Metadata || events[i].ID != before[i].ID {
			t.Errorf("events[%d]: got %+v after Write, want it unchanged: %+v", i, events[i], before[i])
		}
	}
}
