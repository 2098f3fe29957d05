package eventstore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/msdemo/msdemo/internal/event"
)

// Appends made at the same time share bus messages (batches), yet each caller gets the
// reply to its own request: every goroutine creates its stream with its own number of
// events, and then conflicts on it; the replies' positions are where the feed has them.
func TestConcurrentAppendsGetTheirOwnReplies(t *testing.T) {
	t.Parallel()
	client, stop := startStore(t, t.TempDir())
	defer stop()
	const writers = 64
	var wg sync.WaitGroup
	firstPositions := make([]int64, writers)
	for w := range writers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			stream := fmt.Sprintf("writer-%d", w)
			n := int64(1 + w%5)
			none := int64(0)
			for try, wantOK := range []bool{true, false} {
				events := make([]event.New, n)
				for i := range events {
					events[i] = event.New{ID: uuid.NewString(), Type: "writer.wrote"}
				}
				r, err := client.Append(ctx, event.AppendRequest{Stream: stream, ExpectedVersion: &none, Events: events})
				switch {
				case err != nil:
					t.Errorf("%s, append %d: %v", stream, try, err)
				case wantOK && (!r.OK || r.FirstVersion != 1 || r.LastVersion != n || r.LastPosition != r.FirstPosition+n-1):
					t.Errorf("%s, first append: got %+v, want versions 1-%d at consecutive positions", stream, r, n)
				case !wantOK && (r.Error != event.ErrWrongExpectedVersion || r.CurrentVersion == nil || *r.CurrentVersion != n):
					t.Errorf("%s, second append: got %+v, want wrong_expected_version at %d", stream, r, n)
				case wantOK:
					firstPositions[w] = r.FirstPosition
				}
			}
		})
	}
	wg.Wait()
	page, err := client.Feed(context.Background(), 0, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	for w, p := range firstPositions {
		if p < 1 || p > int64(len(page.Events)) || page.Events[p-1].Stream != fmt.Sprintf("writer-%d", w) || page.Events[p-1].Version != 1 {
			t.Errorf("writer-%d was told its events start at position %d, which the feed does not say", w, p)
		}
	}
}

// AppendDecision gives the stored event, caused by its trigger, or nil when the stream
// moved on or the same decision was stored before.
func TestAppendDecision(t *testing.T) {
	t.Parallel()
	client, stop := startStore(t, t.TempDir())
	defer stop()
	ctx := t.Context()
	d := event.New{ID: uuid.NewString(), Type: "thing.decided"}
	cause := &event.Stored{ID: "cause-1", Metadata: event.Metadata{CorrelationID: "request-1"}}
	stored, err := client.AppendDecision(ctx, "thing-1", 0, d, cause)
	if err != nil || stored == nil || stored.Version != 1 || stored.ID != d.ID || stored.Position < 1 {
		t.Fatalf("first decision: got %+v, %v; want it stored at version 1", stored, err)
	}
	if m := stored.Metadata; m.CausationID != "cause-1" || m.CorrelationID != "request-1" {
		t.Errorf("got metadata %+v, want caused by cause-1 in request-1", m)
	}
	if again, err := client.AppendDecision(ctx, "thing-1", 0, d, nil); err != nil || again != nil {
		t.Errorf("the same decision again: got %+v, %v; want nil (duplicate)", again, err)
	}
	other := event.New{ID: uuid.NewString(), Type: "thing.decided"}
	if late, err := client.AppendDecision(ctx, "thing-1", 0, other, nil); err != nil || late != nil {
		t.Errorf("a decision on version 0 after version 1: got %+v, %v; want nil (moved on)", late, err)
	}
	if _, err := client.AppendDecision(ctx, "thing-1", 1, event.New{ID: uuid.NewString(), Type: "Bad"}, nil); err == nil {
		t.Error("an invalid decision: got no error")
	}
}
