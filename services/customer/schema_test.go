package customer

import (
	"context"
	"reflect"
	"strconv"
	"testing"
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
