package customer

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/testenv"
)

// TestReadModelLostWhileRunning: Redis loses every key of the read model (a restart
// without persistence) while the service runs; the service notices, rebuilds the read
// model from the event store by itself, and goes on applying new events. Before, it
// applied new events to the empty read model until it was restarted (found by the chaos
// soak, which wipes the shop's Redis keys).
func TestReadModelLostWhileRunning(t *testing.T) {
	t.Parallel()
	ts := start(t)
	admin := ts.login(t, "admin", adminPass)
	for i := range 3 {
		name := fmt.Sprintf("user%d", i)
		tok := ts.register(t, name, "password "+name)
		expect(t, 200, "PUT", ts.api+"/users/"+name, tok, ProfileChange{FullName: "Renamed " + name, Email: name + "@new.example"}, nil)
	}
	cfg := ts.svc.cfg
	before := dump(t, cfg)

	rdb := testRedis(t, cfg.KeyPrefix)
	keys, err := rdb.Keys(context.Background(), cfg.KeyPrefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys of the read model: %v %v", keys, err)
	}
	if err := rdb.Del(context.Background(), keys...).Err(); err != nil {
		t.Fatal(err)
	}
	// Until the read model is back, a login is "not now" (503), never "wrong password".
	for range 20 {
		status, body := do(t, "POST", ts.api+"/login", "", map[string]string{"username": "user2", "password": "password user2"})
		if status != 200 && status != 503 {
			t.Fatalf("login while the read model is rebuilt: got %d %s, want 200 or 503", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	testenv.Eventually(t, 30*time.Second, "the read model rebuilt after Redis lost it", func() bool {
		return reflect.DeepEqual(dump(t, cfg), before)
	})
	testenv.Eventually(t, 10*time.Second, "a user of before logs in", func() bool {
		status, _ := do(t, "POST", ts.api+"/login", "", map[string]string{"username": "user1", "password": "password user1"})
		return status == 200
	})
	// New events after the rebuild are applied on top of it.
	ts.register(t, "user9", "password user9")
	expect(t, 200, "GET", ts.api+"/users/user0", admin, nil, nil)
	if got := len(dump(t, cfg)); got != len(before)+1 {
		t.Errorf("read model has %d users after one more registered, want %d", got, len(before)+1)
	}
}
