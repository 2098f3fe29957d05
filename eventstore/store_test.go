package eventstore

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/msdemo/msdemo/internal/event"
)

// A commit that fails because the database holds a commit at its position already (stored
// by a commit that did not answer, or another writer) makes the store learn the commits
// after its head, reading only those: it then goes on from the right position although
// its history, here an unreadable chunk, is not read again.
func TestFailedCommitReadsOnlyTheCommitsAfterTheHead(t *testing.T) {
	t.Parallel()
	ctx, s, db := runStore(t, "fenced", false)

	appendOne := func(stream string, expected *int64) event.AppendReply {
		t.Helper()
		r, err := s.Append(ctx, event.AppendRequest{Stream: stream, ExpectedVersion: expected,
			Events: []event.New{newEvent("test.happened", map[string]any{"at": stream})}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for i := range chunkSize + 2 { // a full chunk, written as its own document
		if r := appendOne("history-1", nil); !r.OK {
			t.Fatalf("append %d: %+v", i, r)
		}
	}
	head := s.Head()
	if s.idx.chunked != chunkSize {
		t.Fatalf("chunked up to %d, want %d", s.idx.chunked, chunkSize)
	}
	// The history becomes unreadable: reading it all again would fail.
	if _, err := db.chunks.UpdateOne(ctx, bson.D{{Key: "_id", Value: chunkID(0)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "events", Value: "not JSON"}}}}); err != nil {
		t.Fatal(err)
	}
	// Another writer stores two commits at the positions this store means to use next.
	data, _ := json.Marshal(map[string]string{"by": "another writer"})
	for i := range int64(2) {
		e := event.Stored{ID: uuid.NewString(), Stream: "foreign-1", Version: i + 1, Position: head + 1 + i,
			Type: "test.happened", Data: data, RecordedAt: time.Now().UTC()}
		if err := db.insertCommit(ctx, []event.Stored{e}); err != nil {
			t.Fatal(err)
		}
	}

	if r := appendOne("mine-1", nil); r.Error != event.ErrUnavailable {
		t.Fatalf("append onto the other writer's position: got %+v, want unavailable", r)
	}
	// The writer answers, then catches up, then takes the next request.
	if r := appendOne("mine-1", nil); !r.OK || r.FirstPosition != head+3 {
		t.Fatalf("append after the failed commit: got %+v, want ok at position %d, after the other writer's", r, head+3)
	}
	if r := appendOne("foreign-1", version(2)); !r.OK || r.FirstVersion != 3 {
		t.Fatalf("append to the other writer's stream at version 2: got %+v, want ok at version 3", r)
	}
}
