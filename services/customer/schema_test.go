package customer

import (
	"context"
	"reflect"
	"strconv"
	"testing"

	"github.com/msdemo/msdemo/internal/testenv"
)

// A read model of another schema version (or of none: made before versions) is emptied
// at start and rebuilt from the events; one of the current version is left as it is.
func TestSchemaVersionDecidesTheRebuildAtStart(t *testing.T) {
	t.Parallel()
	ts := start(t)
	for _, name := range []string{"ann", "bob"} {
		ts.register(t, name, "password "+name)
	}
	cfg := ts.svc.cfg
	before := dump(t, cfg)
	rdb := testRedis(t, cfg.KeyPrefix)
	ctx := context.Background()
	s := newStore(rdb, cfg.KeyPrefix)
	if v, err := rdb.Get(ctx, s.schemaKey()).Result(); err != nil || v != strconv.Itoa(schemaVersion) {
		t.Fatalf("schema version after the first start: got %q (%v), want %d", v, err, schemaVersion)
	}

	// A mark that only a rebuild removes: a change no event made.
	mark := func() {
		t.Helper()
		if err := rdb.HSet(ctx, s.userKey("ann"), "full_name", "not from an event").Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, stored := range []string{"", "0", strconv.Itoa(schemaVersion + 1)} {
		ts.svc.stop()
		mark()
		if stored == "" {
			rdb.Del(ctx, s.schemaKey())
		} else {
			rdb.Set(ctx, s.schemaKey(), stored, 0)
		}
		ts.svc = runService(t, cfg)
		if after := dump(t, cfg); !reflect.DeepEqual(after, before) {
			t.Errorf("restart on schema version %q: got %v, want the read model rebuilt: %v", stored, after, before)
		}
		if v, _ := rdb.Get(ctx, s.schemaKey()).Result(); v != strconv.Itoa(schemaVersion) {
			t.Errorf("restart on schema version %q: version now %q, want %d", stored, v, schemaVersion)
		}
	}

	ts.svc.stop()
	mark()
	ts.svc = runService(t, cfg)
	if got := dump(t, cfg)["ann"]["full_name"]; got != "not from an event" {
		t.Errorf("restart on the current schema version: ann's full_name is %q, want the read model untouched", got)
	}
}

// A replica whose schema lock expired while it emptied the read model, and was taken by
// another, neither records the version nor releases the other's lock.
func TestSchemaLockIsItsTakersOwn(t *testing.T) {
	t.Parallel()
	prefix := testenv.Name(t) + ":"
	rdb := testRedis(t, prefix)
	ctx := context.Background()
	s := newStore(rdb, prefix)
	t.Cleanup(func() { rdb.Del(context.Background(), s.schemaKey(), s.schemaLockKey()) })
	rdb.Set(ctx, s.schemaLockKey(), "the other replica's", schemaLockTTL)

	recorded, err := recordSchema.Run(ctx, rdb, []string{s.schemaLockKey(), s.schemaKey()}, "my expired token", "1").Int()
	if err != nil || recorded != 0 {
		t.Fatalf("record with a lock that is not mine: got %d (%v), want 0", recorded, err)
	}
	if err := releaseSchemaLock.Run(ctx, rdb, []string{s.schemaLockKey()}, "my expired token").Err(); err != nil {
		t.Fatal(err)
	}
	if v, _ := rdb.Get(ctx, s.schemaLockKey()).Result(); v != "the other replica's" {
		t.Errorf("the other replica's lock is now %q, want it kept", v)
	}
	if n, _ := rdb.Exists(ctx, s.schemaKey()).Result(); n != 0 {
		t.Error("the version was recorded by a replica that no longer held the lock")
	}

	recorded, err = recordSchema.Run(ctx, rdb, []string{s.schemaLockKey(), s.schemaKey()}, "the other replica's", "1").Int()
	if v, _ := rdb.Get(ctx, s.schemaKey()).Result(); err != nil || recorded != 1 || v != "1" {
		t.Errorf("record with my own lock: got %d (%v), version %q, want 1 and version 1", recorded, err, v)
	}
	if n, _ := rdb.Exists(ctx, s.schemaLockKey()).Result(); n != 0 {
		t.Error("recording the version left the lock")
	}
}
