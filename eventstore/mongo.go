package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/msdemo/msdemo/internal/event"
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
//   - meta: the store's identity ("store") and how far it has published ("published").
const (
	collCommits = "commits"
	collChunks  = "chunks"
	collMeta    = "meta"
	chunkSize   = 128
)

// eventDoc is a stored event in BSON. Data is kept as the JSON text the writer sent, so that
// numbers and keys come back exactly as written on every backend.
type eventDoc struct {
	ID         string         `bson:"id"`
	Stream     string         `bson:"stream"`
	Version    int64          `bson:"version"`
	Position   int64          `bson:"position"`
	Type       string         `bson:"type"`
	Data       string         `bson:"data"`
	Metadata   event.Metadata `bson:"metadata"`
	RecordedAt time.Time      `bson:"recorded_at"`
}

type commitDoc struct {
	ID     string     `bson:"_id"`
	First  int64      `bson:"first"`
	Last   int64      `bson:"last"`
	Events []eventDoc `bson:"events"`
}

type chunkDoc struct {
	ID    string `bson:"_id"`
	First int64  `bson:"first"`
	Last  int64  `bson:"last"`
	// TailCommit is the first position of the commit that holds Last, where reading
	// the commits after this chunk starts.
	TailCommit int64      `bson:"tail_commit"`
	Events     []eventDoc `bson:"events"`
}

type storeDoc struct {
	ID        string    `bson:"_id"`
	StoreID   string    `bson:"store_id"`
	CreatedAt time.Time `bson:"created_at"`
}

type publishedDoc struct {
	ID       string `bson:"_id"`
	StoreID  string `bson:"store_id"`
	Position int64  `bson:"position"`
}

func commitID(first int64) string { return fmt.Sprintf("c%015d", first) }
func chunkID(n int64) string      { return fmt.Sprintf("k%012d", n) }

// chunkOf is the number of the chunk that holds position p (positions start at 1).
func chunkOf(p int64) int64 { return (p - 1) / chunkSize }

func toDoc(e event.Stored) eventDoc {
	return eventDoc{ID: e.ID, Stream: e.Stream, Version: e.Version, Position: e.Position,
		Type: e.Type, Data: string(e.Data), Metadata: e.Metadata, RecordedAt: e.RecordedAt}
}

func (d eventDoc) event() event.Stored {
	return event.Stored{ID: d.ID, Stream: d.Stream, Version: d.Version, Position: d.Position,
		Type: d.Type, Data: []byte(d.Data), Metadata: d.Metadata, RecordedAt: d.RecordedAt.UTC()}
}

// errFenced means another writer stored a commit at a position this one meant to use.
var errFenced = errors.New("another writer stored a commit at this position")

// mongoStore is the event store's adapter to a MongoDB-API database.
type mongoStore struct {
	client  *mongo.Client
	commits *mongo.Collection
	chunks  *mongo.Collection
	meta    *mongo.Collection
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
		chunks: db.Collection(collChunks), meta: db.Collection(collMeta)}, nil
}

func (m *mongoStore) close(ctx context.Context) error { return m.client.Disconnect(ctx) }

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
	doc = storeDoc{ID: "store", StoreID: uuid.NewString(), CreatedAt: time.Now().UTC()}
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
	doc := commitDoc{ID: commitID(events[0].Position), First: events[0].Position,
		Last: events[len(events)-1].Position, Events: make([]eventDoc, len(events))}
	for i, e := range events {
		doc.Events[i] = toDoc(e)
	}
	_, err := m.commits.InsertOne(ctx, doc)
	if mongo.IsDuplicateKeyError(err) {
		return errFenced
	}
	return err
}

// commit reads the commit that starts at first; found is false when there is none.
func (m *mongoStore) commit(ctx context.Context, first int64) (doc commitDoc, found bool, err error) {
	err = m.commits.FindOne(ctx, bson.D{{Key: "_id", Value: commitID(first)}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return doc, false, nil
	}
	return doc, err == nil, err
}

// insertChunk stores chunk n. A chunk that exists already is left as it is: chunks are
// derived from commits, so both copies hold the same events.
func (m *mongoStore) insertChunk(ctx context.Context, n, tailCommit int64, events []event.Stored) error {
	doc := chunkDoc{ID: chunkID(n), First: events[0].Position, Last: events[len(events)-1].Position,
		TailCommit: tailCommit, Events: make([]eventDoc, len(events))}
	for i, e := range events {
		doc.Events[i] = toDoc(e)
	}
	_, err := m.chunks.InsertOne(ctx, doc)
	if mongo.IsDuplicateKeyError(err) {
		return nil
	}
	return err
}

// chunk reads chunk n; found is false when there is none.
func (m *mongoStore) chunk(ctx context.Context, n int64) (doc chunkDoc, found bool, err error) {
	err = m.chunks.FindOne(ctx, bson.D{{Key: "_id", Value: chunkID(n)}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return doc, false, nil
	}
	return doc, err == nil, err
}

// published returns how far events have been published for storeID (0 when never).
func (m *mongoStore) published(ctx context.Context) (int64, error) {
	var doc publishedDoc
	err := m.meta.FindOne(ctx, bson.D{{Key: "_id", Value: "published"}}).Decode(&doc)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	return doc.Position, err
}

// setPublished records that every event up to position has been published.
func (m *mongoStore) setPublished(ctx context.Context, position int64) error {
	_, err := m.meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: "published"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "position", Value: position}}}},
		options.UpdateOne().SetUpsert(true))
	return err
}
