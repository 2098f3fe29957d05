package eventstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// The writer lease. Of the event store processes that share one database, one is the
// writer: it takes append requests, publishes, and writes stream pages. The others serve
// reads and stand by, ready to take over when the writer's lease runs out.
//
// The lease is kept in terms: the writer of term n holds document "lease-<n>" in the meta
// collection, and renews it by moving its expiry forward. A process takes term n+1 by
// inserting "lease-<n+1>", when term n has expired or was its own (a restarted process
// need not wait for its own lease to run out). An insert is atomic on every backend and
// FerretDB has no transactions, so two processes that both see term n expire cannot both
// take term n+1: one insert fails as a duplicate. A writer that finds a newer term than
// its own stops at once.
//
// The lease keeps the writers from taking turns; it is not what keeps the data right. A
// writer that was paused past its expiry and has not yet noticed can still try to commit:
// the commit's _id (its first position) then exists already, written by the new writer,
// and the old writer's insert fails (errFenced), so no position is written twice and no
// event is stored by two writers. Expiry is read on each process's own clock, so clocks
// must agree to well within leaseTTL (NTP does).
const (
	leaseTTL = 3 * time.Second
	// leaseRenewEvery is how often the writer renews; leaseTTL/leaseRenewEvery tries may
	// fail before the lease is lost.
	leaseRenewEvery = time.Second
	// standbyPoll is how often a standby catches up with the commits and looks at the lease.
	standbyPoll = 250 * time.Millisecond
)

// errLeaseLost means another process became the writer, or this one could not renew its
// lease before it expired: it must stop writing.
var errLeaseLost = errors.New("lost the event store's writer lease")

type leaseDoc struct {
	ID      string    `bson:"_id"`
	Term    int64     `bson:"term"`
	Holder  string    `bson:"holder"`
	Expires time.Time `bson:"expires"`
}

func leaseID(term int64) string { return fmt.Sprintf("lease-%012d", term) }

// writerLease takes and holds the writer lease for holder, a name unique among the
// processes sharing the database and the same when one restarts (its advertised URL).
type writerLease struct {
	db     *mongoStore
	holder string
	logger *slog.Logger
	// term is the newest term seen (held, once acquire returned).
	term int64
}

// newest returns the lease of the newest term from l.term on; nil when none was taken.
func (l *writerLease) newest(ctx context.Context) (*leaseDoc, error) {
	var newest *leaseDoc
	for term := max(l.term, 1); ; term++ {
		var doc leaseDoc
		err := l.db.meta.FindOne(ctx, bson.D{{Key: "_id", Value: leaseID(term)}}).Decode(&doc)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return newest, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read writer lease %d: %w", term, err)
		}
		newest = &doc
		l.term = term
	}
}

// acquire returns once this process holds the lease, or with ctx's error. standingBy is
// called after each look at a lease held by another process.
func (l *writerLease) acquire(ctx context.Context, standingBy func()) error {
	announced := false
	for {
		newest, err := l.newest(ctx)
		if err == nil && (newest == nil || newest.Holder == l.holder || time.Now().After(newest.Expires)) {
			term := int64(1)
			if newest != nil {
				term = newest.Term + 1
			}
			_, err = l.db.meta.InsertOne(ctx, leaseDoc{ID: leaseID(term), Term: term, Holder: l.holder,
				Expires: time.Now().Add(leaseTTL)})
			if err == nil {
				l.term = term
				l.logger.Info("event store writer", "term", term, "holder", l.holder)
				return nil
			}
			if mongo.IsDuplicateKeyError(err) {
				err = nil // another process took the term first
			}
		}
		if err != nil && ctx.Err() == nil {
			l.logger.Warn("take the writer lease", "error", err)
		} else if newest != nil && !announced {
			l.logger.Info("event store standing by", "writer", newest.Holder, "term", newest.Term)
			announced = true
		}
		standingBy()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(standbyPoll):
		}
	}
}

// hold renews the lease until ctx is done (and returns nil), or returns errLeaseLost when
// a newer term exists or the lease expired before a renewal got through.
func (l *writerLease) hold(ctx context.Context) error {
	held := l.term
	expires := time.Now().Add(leaseTTL)
	tick := time.NewTicker(leaseRenewEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		next := time.Now().Add(leaseTTL)
		err := l.renew(ctx, held, next)
		switch {
		case errors.Is(err, errLeaseLost):
			return err
		case err == nil:
			expires = next
		case ctx.Err() != nil:
			return nil
		case time.Now().After(expires.Add(-leaseRenewEvery / 2)):
			return fmt.Errorf("%w: could not renew it before it expired: %w", errLeaseLost, err)
		default:
			l.logger.Warn("renew the writer lease", "term", held, "error", err)
		}
	}
}

// renew moves the expiry of term's lease to expires, unless a newer term exists.
func (l *writerLease) renew(ctx context.Context, term int64, expires time.Time) error {
	l.term = term
	newest, err := l.newest(ctx)
	if err != nil {
		return err
	}
	if newest == nil || newest.Term != term || newest.Holder != l.holder {
		holder := "nobody"
		if newest != nil {
			holder = fmt.Sprintf("%s (term %d)", newest.Holder, newest.Term)
		}
		return fmt.Errorf("%w: the writer is %s", errLeaseLost, holder)
	}
	_, err = l.db.meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: leaseID(term)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires", Value: expires}}}})
	return err
}

// release ends this process's lease at once, if it is still the newest, so that a standby
// takes over without waiting for it to expire (a graceful stop or a rolling update).
func (l *writerLease) release(ctx context.Context) error {
	held := l.term
	newest, err := l.newest(ctx)
	if err != nil || newest == nil || newest.Term != held || newest.Holder != l.holder {
		return err
	}
	_, err = l.db.meta.UpdateOne(ctx, bson.D{{Key: "_id", Value: leaseID(held)}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires", Value: time.Now().Add(-time.Millisecond)}}}})
	return err
}
