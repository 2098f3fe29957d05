package eventstore

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/msdemo/msdemo/internal/event"
)

// maxUnindexed is how many committed events may wait for the disk index before the writer
// writes them itself rather than leave them to the background.
const maxUnindexed = 50_000

// flushDelay is how long a background flush lets commits gather before it writes them:
// a transaction of the disk index costs about as much as the rows of several small
// commits (BEGIN, a statement prepared for its row count, the head, COMMIT), so under
// load one flush of many commits costs a fraction of one per commit. Lookups find the
// waiting events in memory, so nobody waits for it.
const flushDelay = 25 * time.Millisecond

// unindexed holds the committed events that the disk index does not have yet. The writer
// adds each commit here and goes on; flushIndex writes them to the disk index in the
// background, in larger transactions, off the writer's path. Lookups ask here first, then
// the disk index: an event leaves this set only after the disk index has committed it, so
// every committed event is in one or the other. Safe for concurrent use.
type unindexed struct {
	mu sync.Mutex
	// flushed is the disk index's head: the events after it are here.
	flushed   int64
	events    []event.Stored
	ids       map[string]idEntry
	versions  map[string]int64   // stream -> its last version
	positions map[string][]int64 // stream -> positions here, in version order
}

func newUnindexed(flushed int64) *unindexed {
	return &unindexed{flushed: flushed, ids: map[string]idEntry{}, versions: map[string]int64{},
		positions: map[string][]int64{}}
}

// add records the events of a commit, which follow those already here. It returns how
// many events are waiting.
func (u *unindexed) add(events []event.Stored) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, e := range events {
		u.events = append(u.events, e)
		u.ids[e.ID] = idEntry{stream: e.Stream, position: e.Position, version: e.Version}
		u.versions[e.Stream] = e.Version
		u.positions[e.Stream] = append(u.positions[e.Stream], e.Position)
	}
	return len(u.events)
}

// lookUp returns where those of ids that are here were stored and the versions of those
// of streams with events here, and the ids and streams it does not know.
func (u *unindexed) lookUp(ids, streams []string) (found map[string]idEntry, versions map[string]int64, otherIDs, otherStreams []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	found, versions = map[string]idEntry{}, map[string]int64{}
	for _, id := range ids {
		if e, ok := u.ids[id]; ok {
			found[id] = e
		} else {
			otherIDs = append(otherIDs, id)
		}
	}
	for _, s := range streams {
		if v, ok := u.versions[s]; ok {
			versions[s] = v
		} else {
			otherStreams = append(otherStreams, s)
		}
	}
	return found, versions, otherIDs, otherStreams
}

// positionsOf returns the positions of stream's events here, in version order, the
// version of the first of them, and the disk index's head: together with the disk index's
// positions up to that head, they are all of the stream's.
func (u *unindexed) positionsOf(stream string) (positions []int64, firstVersion, flushed int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	positions = slices.Clone(u.positions[stream])
	// The events of a stream here are its last ones, so their versions end at its version.
	return positions, u.versions[stream] - int64(len(positions)) + 1, u.flushed
}

// count is how many events wait for the disk index.
func (u *unindexed) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.events)
}

// waiting returns the events waiting for the disk index, and the position they end at.
func (u *unindexed) waiting() ([]event.Stored, int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.events) == 0 {
		return nil, u.flushed
	}
	return slices.Clone(u.events), u.events[len(u.events)-1].Position
}

// indexed drops the events up to head, which the disk index has now committed.
func (u *unindexed) indexed(head int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for n < len(u.events) && u.events[n].Position <= head {
		e := u.events[n]
		delete(u.ids, e.ID)
		if u.versions[e.Stream] == e.Version {
			delete(u.versions, e.Stream)
		}
		if p := u.positions[e.Stream]; len(p) > 0 && p[0] == e.Position {
			if len(p) == 1 {
				delete(u.positions, e.Stream)
			} else {
				u.positions[e.Stream] = p[1:]
			}
		}
		n++
	}
	u.events = slices.Delete(u.events, 0, n)
	u.flushed = max(u.flushed, head)
}

// flushIndex writes the events waiting in s.pending to the disk index. One flush runs at a
// time.
func (s *Store) flushIndex(ctx context.Context) error {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	events, head := s.pending.waiting()
	if len(events) == 0 {
		return nil
	}
	if err := s.db.index.add(ctx, events, head); err != nil {
		return err
	}
	s.pending.indexed(head)
	return nil
}

// flushInBackground starts a flush of the waiting events, after flushDelay, unless one
// is under way; it goes on until nothing waits. A failure is logged and tried again with
// the next commit.
func (s *Store) flushInBackground() {
	s.flushStart.Lock()
	defer s.flushStart.Unlock()
	if s.flushStopped || !s.flushing.CompareAndSwap(false, true) {
		return
	}
	s.flusher.Add(1)
	go func() {
		defer s.flusher.Done()
		for {
			for s.pending.count() > 0 {
				time.Sleep(flushDelay)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				err := s.flushIndex(ctx)
				cancel()
				if err != nil {
					s.logger.Error("write the event index", "error", err)
					s.flushing.Store(false)
					return
				}
			}
			s.flushing.Store(false)
			// A commit added after the last look, whose own call found this flush under
			// way, is not left waiting.
			if s.pending.count() == 0 || !s.flushing.CompareAndSwap(false, true) {
				return
			}
		}
	}()
}

// waitForFlush stops background flushes from starting and waits until none runs: the
// database may be closed then. What waits for the index stays there; the next start
// indexes it again from the commits.
func (s *Store) waitForFlush() {
	s.flushStart.Lock()
	s.flushStopped = true
	s.flushStart.Unlock()
	s.flusher.Wait()
}
