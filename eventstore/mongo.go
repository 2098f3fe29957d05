package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/idgen"
)

// The storage layout, chosen so that every read and write is a lookup or insert by _id: the
// only query that both MongoDB and the embedded FerretDB (SQLite) answer without decoding
// every document of a collection.
//
//   - commits: one document per writer batch, _id "c<first position>", holding the batch's
//     events. Inserting one document is atomic on every backend, so a batch (and every
//     append request in it) is stored whole or not at all. The _id also fences a second
//     writer: two writers cannot both insert the commit for the same position.
//   - chunks: the same events regrouped by position, chunkSize per document, _id
//     "k<chunk number>", written once a chunk is full. A page of the global feed is then a
//     few lookups however small the commits were. Chunks are derived from commits and are
//     written again at start-up if a crash lost one.
//   - pages: each stream's events again, streamPageSize per document, _id
//     "<stream>#<page>", inserted by a follower of the commits when a page is full
//     (streams.go), so that reading a long stream is a few lookups even when its events
//     are spread over the whole store.
//     They live in a database of their own ("<database>_pages"): on the embedded FerretDB
//     that is another SQLite file, whose writes do not wait for the commits' (about +15%
//     appends per second with 16 writers, BenchmarkAppend).
//   - meta: the store's identity ("store") and how far each follower got ("published",
//     "indexed").
const (
	collCommits = "commits"
	collChunks  = "chunks"
	collMeta    = "meta"
	collPages   = "pages"
	chunkSize   = 128
)

// The events of a commit or chunk are kept as one JSON array text, exactly the JSON the
// store serves and publishes. FerretDB decodes a document field by field, about 50 us for
// each event's fields; one text field costs a fraction of that, and a chunk read drops
// from about 7 ms to well under 1 ms. The price: a mongosh user sees events as text.
type commitDoc struct {
	ID     string `bson:"_id"`
	First  int64  `bson:"first"`
	Last   int64  `bson:"last"`
	Events string `bson:"events"`
}

type chunkDoc struct {
	ID    string `bson:"_id"`
	First int64  `bson:"first"`
	Last  int64  `bson:"last"`
	// TailCommit is the first position of the commit that holds Last, where reading
	// the commits after this chunk starts.
	TailCommit int64  `bson:"tail_commit"`
	Events     string `bson:"events"`
}

// batch is a decoded commit or chunk.
type batch struct {
	First, Last int64
	TailCommit  int64 // chunks only
	Events      []event.Stored
}

type storeDoc struct {
	ID        string    `bson:"_id"`
	StoreID   string    `bson:"store_id"`
	CreatedAt time.Time `bson:"created_at"`
}

type markDoc struct {
	ID       string `bson:"_id"`
	Position int64  `bson:"position"`
}

func commitID(first int64) string { return fmt.Sprintf("c%015d", first) }
func chunkID(n int64) string      { return fmt.Sprintf("k%012d", n) }

// chunkOf is the number of the chunk that holds position p (positions start at 1).
func chunkOf(p int64) int64 { return (p - 1) / chunkSize }

func encodeEvents(events []event.Stored) (string, error) {
	b, err := json.Marshal(events)
	return string(b), err
}

func decodeEvents(id, text string) ([]event.Stored, error) {
	var events []event.Stored
	if err := json.Unmarshal([]byte(text), &events); err != nil {
		return nil, fmt.Errorf("decode events of %s: %w", id, err)
	}
	return events, nil
}

// errFenced means another writer stored a commit at a position this one meant to use.
var errFenced = errors.New("another writer stored a commit at this position")

// mongoStore is the event store's adapter to a MongoDB-API database.
type mongoStore struct {
	client  *mongo.Client
	commits *mongo.Collection
	chunks  *mongo.Collection
	meta    *mongo.Collection
	pages   *mongo.Collection
	// embedded is the embedded FerretDB, if the store runs one.
	embedded *ferretProcess
	// index is this process's index of the stored events, in a file of its own.
	index *diskIndex
}

// openMongo connects to uri and pings it. Writes wait for the journal of a majority, so an
// acknowledged commit survives a crash.
func openMongo(ctx context.Context, uri, database string) (*mongoStore, error) {
	opts := options.Client().ApplyURI(uri).
		SetWriteConcern(writeconcern.Majority()).
		SetServerSelectionTimeout(5 * time.Second).
		SetAppName("msdemo-eventstore")
	client, err := mongo.Connect(opts)
	if err != nil {
		return nil, fmt.Errorf("connect to MongoDB: %w", err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		_ = client.Disconnect(context.Background())
		return nil, fmt.Errorf("ping MongoDB: %w", err)
	}
	db := client.Database(database)
	return &mongoStore{client: client, commits: db.Collection(collCommits),
		chunks: db.Collection(collChunks), meta: db.Collection(collMeta),
		pages: client.Database(database + "_pages").Collection(collPages)}, nil
}

// close disconnects and closes the index, then stops an embedded FerretDB.
func (m *mongoStore) close(ctx context.Context) error {
	err := m.client.Disconnect(ctx)
	if m.index != nil {
		err = errors.Join(err, m.index.close())
	}
	if m.embedded != nil {
		m.embedded.stop()
	}
	return err
}

// lost is closed when the database is gone for good: an embedded FerretDB that stopped
// without close. It is nil (never closed) for an external MongoDB, whose driver
// reconnects by itself.
func (m *mongoStore) lost() <-chan struct{} {
	if m.embedded == nil {
		return nil
	}
	return m.embedded.done
}

// lostErr says why lost was closed.
func (m *mongoStore) lostErr() error {
	if m.embedded == nil {
		return nil
	}
	select {
	case <-m.embedded.done:
		return m.embedded.err
	default:
		return nil
	}
}

// storeID returns the id of this store, creating it with the store's first use.
func (m *mongoStore) storeID(ctx context.Context) (string, error) {
	var doc storeDoc
	err := m.meta.FindOne(ctx, bson.D{{Key: "_id", Value: "store"}}).Decode(&doc)
	if err == nil {
		return doc.StoreID, nil
	}
	if !errors.Is(err, mongo.ErrNoDocuments) {
		return "", fmt.Errorf("read store id: %w", err)
	}
	doc = storeDoc{ID: "store", StoreID: idgen.New(), CreatedAt: time.Now().UTC()}
	if _, err := m.meta.InsertOne(ctx, doc); err != nil {
		if mongo.IsDuplicateKeyError(err) {
			return m.storeID(ctx)
		}
		return "", fmt.Errorf("create store id: %w", err)
	}
	return doc.StoreID, nil
}

// insertCommit stores events (positions first..last) atomically. It returns errFenced when
// a commit at first exists already.
func (m *mongoStore) insertCommit(ctx context.Context, events []event.Stored) error {
	text, err := encodeEvents(events)
	if err != nil {
		return err
	}
	_, err = m.commits.InsertOne(ctx, commitDoc{ID: commitID(events[0].Position), First: events[0].Position,
		Last: events[len(events)-1].Position, Events: text})
	if mongo.IsDuplicateKeyError(err) {
		return errFenced
	}
	return err
}

// commit reads the commit that starts at first; found is false when there is none.
func (m *mongoStore) commit(ctx context.Context, first int64) (b batch, found bool, err error) {
	var doc commitDoc
	err = m.commits.FindOne(ctx, bson.D{{Key: "_id", Value: commitID(first)}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return b, false, nil
	}
	if err != nil {
		return b, false, err
	}
	events, err := decodeEvents(doc.ID, doc.Events)
	return batch{First: doc.First, Last: doc.Last, Events: events}, true, err
}

// insertChunk stores chunk n. A chunk that exists already is left as it is: chunks are
// derived from commits, so both copies hold the same events.
func (m *mongoStore) insertChunk(ctx context.Context, n, tailCommit int64, events []event.Stored) error {
	text, err := encodeEvents(events)
	if err != nil {
		return err
	}
	_, err = m.chunks.InsertOne(ctx, chunkDoc{ID: chunkID(n), First: events[0].Position,
		Last: events[len(events)-1].Position, TailCommit: tailCommit, Events: text})
	if mongo.IsDuplicateKeyError(err) {
		return nil
	}
	return err
}

// chunk reads chunk n; found is false when there is none.
func (m *mongoStore) chunk(ctx context.Context, n int64) (b batch, found bool, err error) {
	var doc chunkDoc
	err = m.chunks.FindOne(ctx, bson.D{{Key: "_id", Value: chunkID(n)}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return b, false, nil
	}
	if err != nil {
		return b, false, err
	}
	events, err := decodeEvents(doc.ID, doc.Events)
	if err == nil && (len(events) != chunkSize || doc.First != n*chunkSize+1) {
		err = fmt.Errorf("chunk %s is not whole (%d events from position %d)", doc.ID, len(events), doc.First)
	}
	return batch{First: doc.First, Last: doc.Last, TailCommit: doc.TailCommit, Events: events}, true, err
}

// mark returns the position recorded under name (0 when none).
func (m *mongoStore) mark(ctx context.Context, name string) (int64, error) {
	var doc markDoc
	err := m.meta.FindOne(ctx, bson.D{{Key: "_id", Value: name}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	return doc.Position, err
}

// setMark records position under name.
func (m *mongoStore) setMark(ctx context.Context, name string, position int64) error {
	_, err := m.meta.ReplaceOne(ctx, bson.D{{Key: "_id", Value: name}}, markDoc{ID: name, Position: position},
		options.Replace().SetUpsert(true))
	return err
}

type pageDoc struct {
	ID     string `bson:"_id"`
	Events string `bson:"events"`
}

func pageID(stream string, n int64) string { return fmt.Sprintf("%s#%d", stream, n) }

// page reads page n of stream; found is false when there is none.
func (m *mongoStore) page(ctx context.Context, stream string, n int64) (events []event.Stored, found bool, err error) {
	var doc pageDoc
	err = m.pages.FindOne(ctx, bson.D{{Key: "_id", Value: pageID(stream, n)}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	events, err = decodeEvents(doc.ID, doc.Events)
	return events, err == nil, err
}

// insertPage stores the full page n of stream. A page there already is replaced: it holds
// the same events, or (written by a version that rewrote partial pages) fewer of them.
func (m *mongoStore) insertPage(ctx context.Context, stream string, n int64, events []event.Stored) error {
	text, err := encodeEvents(events)
	if err != nil {
		return err
	}
	id := pageID(stream, n)
	doc := pageDoc{ID: id, Events: text}
	if _, err = m.pages.InsertOne(ctx, doc); !mongo.IsDuplicateKeyError(err) {
		return err
	}
	_, err = m.pages.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, doc)
	return err
}
