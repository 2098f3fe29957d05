package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/idgen"
)

// How long Write waits for the event store's reply, and then for the read model.
const (
	appendTimeout  = 10 * time.Second
	visibleTimeout = 5 * time.Second
)

// NewEvent returns an event of typ with data as its JSON and a new id.
func NewEvent(typ string, data any) event.New {
	raw, err := json.Marshal(data)
	if err != nil {
		panic(fmt.Sprintf("event %s: data does not marshal: %v", typ, err)) // a programmer's mistake
	}
	return event.New{ID: idgen.New(), Type: typ, Data: raw}
}

// Write appends events to stream with the expected version (nil: any), then waits until
// the service's read model has applied them, so that a read right after sees them
// (read-your-writes; after 5 s it answers anyway and logs it). Each event gets the
// request's id as correlation id and the caller as user, unless already set; that is
// done on a copy, so the caller's slice is not changed.
//
// Errors: *ConflictError when the stream's version is not expected; ErrUnavailable when
// the event store did not answer (the events may have been stored: sending the same
// events again, with the same ids, is safe), wrapping the cause too (errors.Is finds
// context.DeadlineExceeded or the bus's error in it); an error wrapping ErrInvalid when
// the store refused the request (a bug in the service).
func (rt *Runtime) Write(ctx context.Context, stream string, expected *int64, events ...event.New) (event.AppendReply, error) {
	meta := event.Metadata{CorrelationID: RequestID(ctx)}
	if c, ok := auth.FromContext(ctx); ok {
		meta.User = c.User
	}
	events = slices.Clone(events)
	for i := range events {
		if events[i].Metadata == (event.Metadata{}) {
			events[i].Metadata = meta
		}
	}
	appendCtx, cancel := context.WithTimeout(ctx, appendTimeout)
	defer cancel()
	reply, err := rt.Events.Append(appendCtx, event.AppendRequest{Stream: stream, ExpectedVersion: expected, Events: events})
	switch {
	case err != nil:
		return reply, fmt.Errorf("write to %s: %w: %w", stream, err, ErrUnavailable)
	case reply.Error == event.ErrWrongExpectedVersion:
		var current int64
		if reply.CurrentVersion != nil {
			current = *reply.CurrentVersion
		}
		return reply, &ConflictError{Stream: stream, Current: current}
	case reply.Error == event.ErrUnavailable:
		return reply, fmt.Errorf("append to %s: %w", stream, ErrUnavailable)
	case !reply.OK:
		return reply, fmt.Errorf("append to %s: %s: %s: %w", stream, reply.Error, reply.Message, ErrInvalid)
	}
	if err := rt.WaitApplied(context.WithoutCancel(ctx), reply.LastPosition); err != nil {
		rt.Logger.WarnContext(ctx, "read model behind the write", "stream", stream,
			"position", reply.LastPosition, "applied", rt.Progress.Applied())
	}
	return reply, nil
}

// WaitForStream waits until the service's read model has applied every event of stream
// that the event store holds now (one written by another request or replica), as a write
// that lost to another (ConflictError) does before it reads again; found is false when
// the store has no such stream. Its errors wrap ErrUnavailable.
func (rt *Runtime) WaitForStream(ctx context.Context, stream string) (found bool, err error) {
	events, found, err := rt.Events.Stream(ctx, stream)
	switch {
	case err != nil:
		return false, errors.Join(err, ErrUnavailable)
	case !found:
		return false, nil
	}
	if err := rt.WaitApplied(ctx, events[len(events)-1].Position); err != nil {
		return true, errors.Join(err, ErrUnavailable)
	}
	return true, nil
}

// WaitApplied waits until the service's read model has applied the event at position,
// this replica's or, when another replica is the active consumer, the shared one's
// checkpoint; after 5 s (or when ctx ends) it returns the context's error.
func (rt *Runtime) WaitApplied(ctx context.Context, position int64) error {
	ctx, cancel := context.WithTimeout(ctx, visibleTimeout)
	defer cancel()
	checkpoint := func(ctx context.Context) (int64, error) {
		_, p, err := rt.Checkpoint(ctx)
		return p, err
	}
	return rt.Progress.Wait(ctx, position, checkpoint)
}
