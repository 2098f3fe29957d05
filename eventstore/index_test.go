package eventstore

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/msdemo/msdemo/internal/event"
)

// appendMany appends n requests of 1..5 events over streams thing-0..thing-3 and returns
// the last reply.
func appendMany(t *testing.T, ts *testStore, n int) {
	t.Helper()
	for i := range n {
		events := make([]event.New, 1+i%5)
		for j := range events {
			events[j] = newEvent("thing.happened", map[string]int{"i": i, "j": j})
		}
		if r := ts.append(t, event.AppendRequest{Stream: fmt.Sprintf("thing-%d", i%4), Events: events}); !r.OK {
			t.Fatalf("append %d: %+v", i, r)
		}
	}
}

// versionOf is the version stream has in feed.
func versionOf(feed []event.Stored, stream string) int64 {
	var v int64
	for _, e := range feed {
		if e.Stream == stream {
			v = e.Version
		}
	}
	return v
}

// checkIndexAgrees fails unless the store decides with the index that feed implies: every
// stream read matches, an event of feed sent again is a duplicate at its old position,
// and an append expecting the stream's version is stored at the next position.
func checkIndexAgrees(t *testing.T, ts *testStore, feed []event.Stored) {
	t.Helper()
	checkStreams(t, ts, feed)
	old := feed[len(feed)/3]
	r := ts.append(t, event.AppendRequest{Stream: old.Stream, Events: []event.New{{ID: old.ID, Type: old.Type, Data: old.Data}}})
	if !r.OK || !r.Duplicate || r.FirstPosition != old.Position {
		t.Fatalf("event %s sent again: got %+v, want a duplicate at %d", old.ID, r, old.Position)
	}
	current := versionOf(feed, "thing-1")
	r = ts.append(t, event.AppendRequest{Stream: "thing-1", ExpectedVersion: version(current - 1),
		Events: []event.New{newEvent("thing.happened", nil)}})
	if r.OK || r.Error != event.ErrWrongExpectedVersion || *r.CurrentVersion != current {
		t.Fatalf("append expecting a stale version: got %+v, want wrong_expected_version at %d", r, current)
	}
	r = ts.append(t, event.AppendRequest{Stream: "thing-1", ExpectedVersion: version(current),
		Events: []event.New{newEvent("thing.happened", nil)}})
	if !r.OK || r.FirstVersion != current+1 || r.FirstPosition != feed[len(feed)-1].Position+1 {
		t.Fatalf("append expecting version %d: got %+v, want version %d at position %d",
			current, r, current+1, feed[len(feed)-1].Position+1)
	}
}

// A store whose index file was lost builds it again from the database, and decides as
// before.
func TestIndexBuiltAgainWhenLost(t *testing.T) {
	t.Parallel()
	ts := startStore(t, Config{})
	appendMany(t, ts, 150)
	before := ts.feed(t)
	ts.stop()
	if err := os.RemoveAll(filepath.Join(ts.cfg.DataDir, "eventstore-index")); err != nil {
		t.Fatal(err)
	}
	ts = startStore(t, ts.cfg)
	if after := ts.feed(t); len(after) != len(before) {
		t.Fatalf("after losing the index: %d events in the feed, want %d", len(after), len(before))
	}
	checkIndexAgrees(t, ts, before)
}

// A database restored from an older copy than the index is noticed: the index is built
// again, rather than deciding versions and duplicates with events the database lost.
func TestIndexAheadOfARestoredDatabase(t *testing.T) {
	t.Parallel()
	ts := startStore(t, Config{})
	appendMany(t, ts, 150) // more than two chunks
	backup := ts.feed(t)
	ts.stop()
	data := filepath.Join(ts.cfg.DataDir, "eventstore")
	copyDir(t, data, data+".backup")

	ts = startStore(t, ts.cfg)
	appendMany(t, ts, 150)
	if n := len(ts.feed(t)); n <= len(backup)+chunkSize {
		t.Fatalf("%d events after the backup, want more than a chunk more than its %d", n, len(backup))
	}
	ts.stop()
	if err := os.RemoveAll(data); err != nil {
		t.Fatal(err)
	}
	copyDir(t, data+".backup", data)

	ts = startStore(t, ts.cfg)
	if after := ts.feed(t); len(after) != len(backup) {
		t.Fatalf("restored: %d events in the feed, want the backup's %d", len(after), len(backup))
	}
	checkIndexAgrees(t, ts, backup)
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v: %s", from, to, err, out)
	}
}
