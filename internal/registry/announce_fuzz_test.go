package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
)

// FuzzAnnouncement hands any body to a table that knows one instance, as a message of the
// registry exchange, and checks that a body the table cannot use is refused for good
// (bus.ErrPermanent) and leaves the table as it was, that a leaving instance is gone after
// it, and that an instance it keeps has a URL the gateway can forward to.
// The seed corpus is in testdata/fuzz/FuzzAnnouncement.
func FuzzAnnouncement(f *testing.F) {
	f.Add([]byte(`{"service":"product","instance":"product-host1-4711-k3xq","url":"http://10.0.0.5:6004"}`))
	f.Add([]byte(`{"service":"order","instance":"order-1","url":"http://127.0.0.1:6003","leaving":true}`))
	f.Add([]byte(`{"service":"order","instance":"order-2","url":"https://order.internal"}`))
	known := Instance{Service: "order", Instance: "order-1", URL: "http://127.0.0.1:6003"}
	f.Fuzz(func(t *testing.T, body []byte) {
		table := NewTable(time.Minute, nil)
		table.Observe(known)
		before := table.Instances()
		err := table.handle(context.Background(), bus.Delivery{Message: bus.Message{Body: body}})
		after := table.Instances()
		if err != nil {
			if !errors.Is(err, bus.ErrPermanent) || !slices.Equal(after, before) {
				t.Fatalf("body %q: got error %v and instances %+v, want a permanent error and %+v", body, err, after, before)
			}
			return
		}
		for _, e := range after {
			if u, err := url.Parse(e.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				t.Fatalf("body %q: the table keeps %+v, whose URL the gateway cannot forward to", body, e)
			}
		}
		var a announcement
		if err := json.Unmarshal(body, &a); err != nil {
			t.Fatalf("body %q: accepted, but it does not decode: %v", body, err)
		}
		kept := slices.ContainsFunc(after, func(e Entry) bool { return e.Instance == a.Instance })
		if gone := !slices.ContainsFunc(after, func(e Entry) bool {
			return e.Service == a.Service && e.Instance.Instance == a.Instance.Instance
		}); a.Leaving != gone || (!a.Leaving && !kept) {
			t.Fatalf("body %q: the table holds %+v after an announcement %+v", body, after, a)
		}
	})
}
