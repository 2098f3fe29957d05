package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/telemetry"
)

// Limits of one writer batch: the commit document must stay well inside MongoDB's 16 MiB.
const (
	maxBatchEvents = 4000
	maxBatchBytes  = 8 << 20
)

// ErrUnavailable means the store could not write to its database; nothing was stored by the
// request that got it (or, if the database wrote but did not answer, a retry finds the
// events stored and answers duplicate).
var ErrUnavailable = errors.New("event store unavailable")

// Store appends and reads events. One writer goroutine takes append requests in batches,
// checks expected versions against the in-memory index, assigns versions and gap-free
// global positions, and stores each batch as one atomic commit document. Readers see an
// event only once its commit is stored. Safe for concurrent use.
type Store struct {
	db     *mongoStore
	id     string
	logger *slog.Logger
	// jobs carries the requests of one append message at a time, so that the writer
	// takes them together (one commit) rather than as they trickle in.
	jobs   chan []*appendJob
	chunks *chunkCache
	// indexer copies streams into pages; Stream reads how far it got.
	indexer *follower
	// metrics records the writer's commits; nil records none. Set before runWriter.
	metrics *telemetry.Component

	// extendMu is held by whatever extends the index: the writer's commits, and a
	// standby's catch-ups.
	extendMu sync.Mutex
	// pending holds the committed events not yet in the disk index; flushMu is held by
	// the flush that writes them there, and flushing is true while one runs in the
	// background.
	pending  *unindexed
	flushMu  sync.Mutex
	flushing atomic.Bool
	// flusher runs while a background flush does; after waitForFlush (flushStopped,
	// under flushStart) no background flush starts.
	flusher      sync.WaitGroup
	flushStart   sync.Mutex
	flushStopped bool
	// following is true while another process is the writer: this store then catches up
	// with the database before each read (readFresh).
	following atomic.Bool

	mu  sync.RWMutex
	idx *index
	// committed is closed and replaced each time head moves, to wake waiting readers.
	committed chan struct{}
}

// index is the store's in-memory view of the newest events; everything older is in the
// database, and where each event is in the disk index (diskIndex).
type index struct {
	head    int64 // last committed position
	chunked int64 // last position stored in a chunk document
	// tail holds the committed events after chunked, and tailCommit the first position
	// of the commit each of them came in.
	tail       []event.Stored
	tailCommit []int64
}

type idEntry struct {
	stream   string
	position int64
	version  int64
}

type appendJob struct {
	req   event.AppendRequest
	reply chan event.AppendReply // buffered: the writer never blocks on it
}

// openStore loads the index from db and returns a store whose writer and stream indexer
// are not running yet (runWriter, indexer.run).
func openStore(ctx context.Context, db *mongoStore, logger *slog.Logger) (*Store, error) {
	id, err := db.storeID(ctx)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, id: id, logger: logger, jobs: make(chan []*appendJob, 1024),
		chunks: newChunkCache(256), committed: make(chan struct{})}
	s.indexer = newStreamIndexer(s)
	if err := s.reload(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// ID is the identity of the store's data, created with it. A follower that finds another
// id than it saw before is reading a different store and must start again from 0.
func (s *Store) ID() string { return s.id }

// Head returns the last committed position (0 for an empty store).
func (s *Store) Head() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.idx.head
}

// reload brings the disk index up to the database and rebuilds the in-memory index: the
// chunks and commits after the disk index's head are indexed (all of them only when the
// index is new, foreign or ahead of the database), and the commits after the last chunk
// are read into the tail. Its cost grows with what was committed since the index was last
// written, not with the number of stored events.
func (s *Store) reload(ctx context.Context) error {
	start := time.Now()
	st, err := s.db.index.state(ctx)
	if err != nil {
		return err
	}
	rebuilt := false
	if st.storeID != s.id {
		if err := s.db.index.reset(ctx, s.id); err != nil {
			return err
		}
		st, rebuilt = indexState{storeID: s.id, tailCommit: 1}, true
	}
	x, err := s.load(ctx, st)
	if errors.Is(err, errIndexAhead) && !rebuilt {
		s.logger.Warn("the event index is ahead of the database: building it again", "index_head", st.head)
		if err := s.db.index.reset(ctx, s.id); err != nil {
			return err
		}
		st, rebuilt = indexState{storeID: s.id, tailCommit: 1}, true
		x, err = s.load(ctx, st)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.idx = x
	s.pending = newUnindexed(x.head) // load indexed everything
	s.mu.Unlock()
	s.writeChunks(ctx)
	s.logger.Info("event store loaded", "store_id", s.id, "head", x.head, "index_rebuilt", rebuilt,
		"indexed_from", st.head, "duration_ms", time.Since(start).Milliseconds())
	return nil
}

// load indexes what the database holds after st.head and returns the in-memory index.
func (s *Store) load(ctx context.Context, st indexState) (*index, error) {
	indexed := st.head
	var pending []event.Stored // read but not yet in the disk index
	flush := func(head int64) error {
		if head <= indexed {
			return nil
		}
		if err := s.db.index.add(ctx, pending, head); err != nil {
			return err
		}
		pending, indexed = pending[:0], head
		return nil
	}
	x := &index{chunked: st.chunked}
	nextCommit := st.tailCommit
	// The last chunk the index saw written is read again: it must still be there.
	for n := chunkOf(max(st.chunked, 1)); ; n++ {
		doc, found, err := s.db.chunk(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("read chunk %d: %w", n, err)
		}
		if !found {
			if st.chunked > 0 && n == chunkOf(st.chunked) {
				return nil, fmt.Errorf("%w (chunk %d is missing)", errIndexAhead, n)
			}
			break
		}
		for _, e := range doc.Events {
			if e.Position > indexed {
				pending = append(pending, e)
			}
		}
		x.chunked, nextCommit = doc.Last, doc.TailCommit
		if len(pending) >= maxBatchEvents {
			if err := flush(doc.Last); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(x.chunked); err != nil {
		return nil, err
	}
	x.head = x.chunked
	for {
		doc, found, err := s.db.commit(ctx, nextCommit)
		if err != nil {
			return nil, fmt.Errorf("read commit at %d: %w", nextCommit, err)
		}
		if !found {
			break
		}
		for _, e := range doc.Events {
			if e.Position > x.chunked {
				x.tail = append(x.tail, e)
				x.tailCommit = append(x.tailCommit, doc.First)
			}
			if e.Position > indexed {
				pending = append(pending, e)
			}
		}
		x.head = doc.Last
		nextCommit = doc.Last + 1
	}
	if indexed > x.head {
		return nil, fmt.Errorf("%w (index at %d, database at %d)", errIndexAhead, indexed, x.head)
	}
	if err := flush(x.head); err != nil {
		return nil, err
	}
	return x, nil
}

// Append stores the request's events atomically, or none, and returns the reply of the
// wire contract. It returns an error only when ctx ends before the writer answered (the
// request may or may not have been stored; sending it again is safe).
func (s *Store) Append(ctx context.Context, req event.AppendRequest) (event.AppendReply, error) {
	replies, err := s.AppendAll(ctx, []event.AppendRequest{req})
	if err != nil {
		return event.AppendReply{}, err
	}
	return replies[0], nil
}

// AppendAll hands every request to the writer in order, so that they are decided in that
// order and usually stored in one commit, and returns their replies. Each request is
// atomic on its own, not the whole: one may fail its expected version while the others
// are stored. Its error is Append's.
func (s *Store) AppendAll(ctx context.Context, reqs []event.AppendRequest) ([]event.AppendReply, error) {
	jobs := make([]*appendJob, len(reqs))
	for i, req := range reqs {
		jobs[i] = &appendJob{req: req, reply: make(chan event.AppendReply, 1)}
	}
	select {
	case s.jobs <- jobs:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	replies := make([]event.AppendReply, len(reqs))
	for i, job := range jobs {
		select {
		case replies[i] = <-job.reply:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return replies, nil
}

// runWriter takes append requests until ctx is done. Requests that queue up while a commit
// is being written form the next batch, so batches grow with load and cost no waiting.
func (s *Store) runWriter(ctx context.Context) {
	for {
		var batch []*appendJob
		select {
		case <-ctx.Done():
			return
		case jobs := <-s.jobs:
			batch = append(batch, jobs...)
		}
		events, size := 0, 0
		count := func(jobs []*appendJob) {
			for _, job := range jobs {
				events += len(job.req.Events)
				for _, e := range job.req.Events {
					size += len(e.Data) + 256
				}
			}
		}
		count(batch)
	gather:
		for events < maxBatchEvents && size < maxBatchBytes {
			select {
			case jobs := <-s.jobs:
				batch = append(batch, jobs...)
				count(jobs)
			default:
				break gather
			}
		}
		s.commit(ctx, batch)
	}
}

// decision is what the writer decided for one request of a batch.
type decision struct {
	job   *appendJob
	reply event.AppendReply
	// stored is true when the request's events are in the batch's commit.
	stored bool
}

// commit decides every request of batch against the index, stores the accepted events as
// one commit document, and answers each request.
func (s *Store) commit(ctx context.Context, batch []*appendJob) {
	s.extendMu.Lock()
	defer s.extendMu.Unlock()
	s.mu.RLock()
	x := s.idx
	s.mu.RUnlock() // only this goroutine changes the index, so reading it unlocked is safe

	now := time.Now().UTC().Truncate(time.Millisecond)
	position := x.head
	storedIDs, versions, err := s.lookUp(ctx, batch)
	if err != nil {
		s.logger.Error("read the event index", "error", err)
		decisions := make([]decision, len(batch))
		for i, job := range batch {
			decisions[i] = decision{job: job, reply: event.AppendReply{Error: event.ErrUnavailable,
				Message: "the event store could not read its index; send the request again"}}
		}
		s.answer(decisions)
		return
	}
	var events []event.Stored
	decisions := make([]decision, len(batch))
	for i, job := range batch {
		req := job.req
		decisions[i].job = job
		lookup := func(id string) (idEntry, bool) {
			e, ok := storedIDs[id]
			return e, ok
		}
		if reply, done := duplicateReply(req, lookup); done {
			decisions[i].reply = reply
			continue
		}
		current := versions[req.Stream]
		if req.ExpectedVersion != nil && *req.ExpectedVersion != current {
			decisions[i].reply = event.AppendReply{Error: event.ErrWrongExpectedVersion, CurrentVersion: &current}
			continue
		}
		reply := event.AppendReply{OK: true, FirstVersion: current + 1, FirstPosition: position + 1}
		for _, n := range req.Events {
			position++
			current++
			data := n.Data
			if len(data) == 0 || string(data) == "null" {
				data = []byte("{}")
			}
			e := event.Stored{ID: n.ID, Stream: req.Stream, Version: current, Position: position,
				Type: n.Type, Data: data, Metadata: n.Metadata, RecordedAt: now}
			events = append(events, e)
			storedIDs[e.ID] = idEntry{stream: e.Stream, position: e.Position, version: e.Version}
		}
		versions[req.Stream] = current
		reply.LastVersion, reply.LastPosition = current, position
		decisions[i].reply, decisions[i].stored = reply, true
	}

	if len(events) > 0 {
		start := time.Now()
		if err := s.db.insertCommit(ctx, events); err != nil {
			s.logger.Error("store commit", "first_position", events[0].Position,
				"events", len(events), "error", err)
			for i := range decisions {
				if decisions[i].reply.Error != event.ErrInvalid {
					decisions[i].reply = event.AppendReply{Error: event.ErrUnavailable,
						Message: "the event store could not write; send the request again"}
				}
			}
			s.answer(decisions)
			// The database may have stored the commit without saying so, or another writer
			// may have: learn the truth before deciding anything else. Only commits after
			// the head can be new, so only they are read.
			if n, err := s.catchUp(ctx); err != nil && ctx.Err() == nil {
				s.logger.Error("catch up after failed commit", "error", err)
			} else if n > 0 {
				s.logger.Warn("found commits after a failed commit", "events", n, "head", s.Head())
			}
			return
		}
		s.metrics.Committed(len(batch), len(events), position, time.Since(start))
		s.extend(ctx, x, [][]event.Stored{events})
	}
	s.answer(decisions)
	s.writeChunks(ctx)
}

// lookUp reads from the disk index which of the batch's event ids were stored before,
// and the current version of each stream the batch appends to (absent: no events).
func (s *Store) lookUp(ctx context.Context, batch []*appendJob) (map[string]idEntry, map[string]int64, error) {
	var ids, streams []string
	seen := map[string]bool{}
	for _, job := range batch {
		for _, e := range job.req.Events {
			ids = append(ids, e.ID)
		}
		if !seen[job.req.Stream] {
			seen[job.req.Stream] = true
			streams = append(streams, job.req.Stream)
		}
	}
	storedIDs, versions, ids, streams := s.pending.lookUp(ids, streams)
	if len(ids) > 0 {
		indexed, err := s.db.index.lookupIDs(ctx, ids)
		if err != nil {
			return nil, nil, err
		}
		maps.Copy(storedIDs, indexed)
	}
	if len(streams) > 0 {
		indexed, err := s.db.index.versions(ctx, streams)
		if err != nil {
			return nil, nil, err
		}
		maps.Copy(versions, indexed)
	}
	return storedIDs, versions, nil
}

// positionsOf returns the positions of stream's versions from..to (to < 0: to the end)
// that are at most x's head, in version order: those the disk index has, then those
// waiting for it.
func (s *Store) positionsOf(ctx context.Context, x *index, stream string, from, to int64) ([]int64, error) {
	if to < 0 {
		to = 1<<63 - 1
	}
	recent, firstRecent, flushed := s.pending.positionsOf(stream)
	positions, err := s.db.index.positions(ctx, stream, from, to, min(flushed, x.head))
	if err != nil {
		return nil, err
	}
	for i, p := range recent {
		if v := firstRecent + int64(i); v >= from && v <= to && p <= x.head {
			positions = append(positions, p)
		}
	}
	return positions, nil
}

// extend makes the index x followed by the commits, each a slice of events in position
// order, the store's index, hands them to the disk index (in the background, unless too
// many wait already), and wakes the readers waiting for a new head. Only the writer calls
// it, with the current index.
func (s *Store) extend(ctx context.Context, x *index, commits [][]event.Stored) {
	waiting := 0
	for _, events := range commits {
		waiting = s.pending.add(events)
	}
	s.mu.Lock()
	nx := *x // a new index value, so that readers holding the old one are unaffected
	for _, events := range commits {
		nx.head = events[len(events)-1].Position
		nx.tail = append(nx.tail, events...)
		for range events {
			nx.tailCommit = append(nx.tailCommit, events[0].Position)
		}
	}
	s.idx = &nx
	close(s.committed)
	s.committed = make(chan struct{})
	s.mu.Unlock()
	if waiting < maxUnindexed {
		s.flushInBackground()
	} else if err := s.flushIndex(ctx); err != nil {
		s.logger.Error("write the event index", "waiting", waiting, "error", err)
	}
}

// follow catches up with the commits of another writer, as a standby does before a read.
func (s *Store) follow(ctx context.Context) error {
	s.extendMu.Lock()
	defer s.extendMu.Unlock()
	_, err := s.catchUp(ctx)
	return err
}

// readFresh makes a standby's reads see every commit stored before they began, as the
// writer's do: a read that follows an acknowledged append sees it, whichever event store
// process it asks.
func (s *Store) readFresh(ctx context.Context) error {
	if !s.following.Load() {
		return nil
	}
	if err := s.follow(ctx); err != nil {
		return fmt.Errorf("catch up with the writer: %w", err)
	}
	return nil
}

// catchUp adds to the index the commits stored after its head (by a commit that failed
// to answer, or another writer), reading those commits only, and returns how many events
// they held. On an error the index stays as it was, and the next commit finds out again.
func (s *Store) catchUp(ctx context.Context) (int, error) {
	s.mu.RLock()
	x := s.idx
	s.mu.RUnlock()
	var commits [][]event.Stored
	n := 0
	for next := x.head + 1; ; {
		doc, found, err := s.db.commit(ctx, next)
		if err != nil {
			return 0, fmt.Errorf("read commit at %d: %w", next, err)
		}
		if !found {
			break
		}
		commits = append(commits, doc.Events)
		n += len(doc.Events)
		next = doc.Last + 1
	}
	if n > 0 {
		s.extend(ctx, x, commits)
		s.writeChunks(ctx)
	}
	return n, nil
}

func (s *Store) answer(decisions []decision) {
	for _, d := range decisions {
		d.job.reply <- d.reply
	}
}

// duplicateReply answers a request whose events were all stored before with the original
// result, and refuses one that mixes stored and new events. done is false for a request
// that is entirely new.
func duplicateReply(req event.AppendRequest, lookup func(id string) (idEntry, bool)) (reply event.AppendReply, done bool) {
	var found []idEntry
	for i, n := range req.Events {
		e, ok := lookup(n.ID)
		if !ok {
			if len(found) > 0 {
				return event.AppendReply{Error: event.ErrInvalid, Message: fmt.Sprintf(
					"events[%d].id is new but events[0].id was stored before: a request is stored whole or not at all", i)}, true
			}
			continue
		}
		if len(found) != i {
			return event.AppendReply{Error: event.ErrInvalid, Message: fmt.Sprintf(
				"events[%d].id %q was stored before but events[0].id is new", i, n.ID)}, true
		}
		if e.stream != req.Stream {
			return event.AppendReply{Error: event.ErrInvalid, Message: fmt.Sprintf(
				"events[%d].id %q was stored before in another stream", i, n.ID)}, true
		}
		found = append(found, e)
	}
	if len(found) == 0 {
		return event.AppendReply{}, false
	}
	first, last := found[0], found[len(found)-1]
	return event.AppendReply{OK: true, Duplicate: true, FirstVersion: first.version,
		LastVersion: last.version, FirstPosition: first.position, LastPosition: last.position}, true
}

// writeChunks stores every full chunk of the tail and drops it from memory. A failure is
// logged and tried again after the next commit; until then the tail keeps the events.
func (s *Store) writeChunks(ctx context.Context) {
	for {
		s.mu.RLock()
		x := s.idx
		s.mu.RUnlock()
		if len(x.tail) < chunkSize {
			return
		}
		n := chunkOf(x.tail[0].Position)
		if err := s.db.insertChunk(ctx, n, x.tailCommit[chunkSize-1], x.tail[:chunkSize]); err != nil {
			s.logger.Error("store chunk", "chunk", n, "error", err)
			return
		}
		if err := s.db.index.setChunked(ctx, x.tail[chunkSize-1].Position, x.tailCommit[chunkSize-1]); err != nil {
			s.logger.Warn("record the last chunk in the event index", "chunk", n, "error", err)
		}
		s.mu.Lock()
		nx := *s.idx
		nx.chunked = x.tail[chunkSize-1].Position
		nx.tail = slices.Clone(nx.tail[chunkSize:])
		nx.tailCommit = slices.Clone(nx.tailCommit[chunkSize:])
		s.idx = &nx
		s.mu.Unlock()
	}
}
