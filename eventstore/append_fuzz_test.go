package eventstore

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
)

// FuzzAppendMessage sends any body as an append message to the store's handler, on a real
// store (embedded FerretDB, opened once for the target), and checks the contract: the
// handler answers every body with a reply (an object for a single request or a refused
// batch, an array of one reply per request for a batch), never an error or a panic; the
// store's head moves by exactly the events of the replies that say they were stored now
// (ok and not duplicate); and those events are stored as the request asked, each a valid
// stored event (event.ParseStored). A refused body stores nothing.
// The seed corpus is in testdata/fuzz/FuzzAppendMessage.
func FuzzAppendMessage(f *testing.F) {
	request := func(stream, version, id, typ, data string) string {
		return `{"stream":"` + stream + `"` + version + `,"events":[{"id":"` + id + `","type":"` + typ + `","data":` + data + `}]}`
	}
	f.Add([]byte(request("product-Ab12cd34ef", `,"expected_version":0`, "e-seed-1", "product.added", `{"name":"Chai","price_cents":1800}`)))
	f.Add([]byte(request("product-Ab12cd34ef", `,"expected_version":1`, "e-seed-2", "product.updated", `{"price_cents":1900}`)))
	f.Add([]byte(request("order-1", "", "e-seed-3", "order.placed", `null`)))
	f.Add([]byte("[" + request("order-2", `,"expected_version":0`, "e-seed-4", "order.placed", `{}`) + "," +
		request("order-2", `,"expected_version":0`, "e-seed-5", "order.placed", `{}`) + `,{"stream":"order-3"}]`))
	f.Add([]byte(`{"stream":"order-1","events":[{"id":"e-seed-3","type":"order.placed"},{"id":"e-new","type":"order.placed"}]}`))

	ctx, store, _ := runStore(f, "fuzz", false)
	handle := appendHandler(store)
	f.Fuzz(func(t *testing.T, body []byte) {
		before := store.Head()
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		raw, err := handle(ctx, bus.Delivery{Message: bus.Message{Body: body}})
		if err != nil {
			t.Fatalf("body %q: handler error %v, want a reply", body, err)
		}
		replies, requests := appendReplies(t, body, raw)
		stored := int64(0)
		for i, r := range replies {
			switch {
			case r.OK && !r.Duplicate:
				stored += r.LastPosition - r.FirstPosition + 1
				checkStored(t, store, body, requests[i], r)
			case r.OK:
			case r.Error == event.ErrInvalid && r.Message != "", r.Error == event.ErrWrongExpectedVersion && r.CurrentVersion != nil:
			default:
				t.Fatalf("body %q: reply %d is %+v, want stored, duplicate, invalid with a message or a version conflict", body, i, r)
			}
		}
		if after := store.Head(); after != before+stored {
			t.Fatalf("body %q: replies %+v say %d events were stored, but the head moved from %d to %d", body, replies, stored, before, after)
		}
	})
}

// appendReplies decodes the handler's answer raw to body: one reply for a single request,
// one per request for a batch (requests[i] is the request of replies[i]), or one that
// refuses the whole batch (then requests is nil).
func appendReplies(t *testing.T, body, raw []byte) (replies []event.AppendReply, requests []event.AppendRequest) {
	t.Helper()
	if !event.IsAppendBatch(body) || !event.IsAppendBatch(raw) {
		var r event.AppendReply
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("body %q: reply %s is not a reply object: %v", body, raw, err)
		}
		if r.OK && event.IsAppendBatch(body) {
			t.Fatalf("body %q: a batch got the single reply %s", body, raw)
		}
		if !r.OK {
			return []event.AppendReply{r}, []event.AppendRequest{{}}
		}
		req, err := event.ParseAppendRequest(body)
		if err != nil {
			t.Fatalf("body %q: got %s, but the request does not parse: %v", body, raw, err)
		}
		return []event.AppendReply{r}, []event.AppendRequest{req}
	}
	if err := json.Unmarshal(raw, &replies); err != nil {
		t.Fatalf("body %q: reply %s is not an array of replies: %v", body, raw, err)
	}
	requests, _, err := event.ParseAppendBatch(body)
	if err != nil || len(requests) != len(replies) {
		t.Fatalf("body %q: got %d replies for a batch that parses as %d requests (%v)", body, len(replies), len(requests), err)
	}
	return replies, requests
}

// checkStored fails t unless the events that reply r says were stored for req are in the
// store, as req asked, at r's positions and versions.
func checkStored(t *testing.T, store *Store, body []byte, req event.AppendRequest, r event.AppendReply) {
	t.Helper()
	n := r.LastPosition - r.FirstPosition + 1
	if n != int64(len(req.Events)) || r.LastVersion-r.FirstVersion+1 != n {
		t.Fatalf("body %q: reply %+v for a request of %d events", body, r, len(req.Events))
	}
	page, err := store.Feed(context.Background(), r.FirstPosition-1, int(n), nil)
	if err != nil || int64(len(page.Events)) != n {
		t.Fatalf("body %q: feed after %d: got %d events (%v), want %d", body, r.FirstPosition-1, len(page.Events), err, n)
	}
	for i, e := range page.Events {
		encoded, _ := json.Marshal(e)
		if _, err := event.ParseStored(encoded); err != nil {
			t.Fatalf("body %q: stored %s, which is not a valid stored event: %v", body, encoded, err)
		}
		want := req.Events[i]
		data := compact(want.Data)
		if len(data) == 0 || string(data) == "null" {
			data = []byte("{}")
		}
		if e.ID != want.ID || e.Type != want.Type || e.Stream != req.Stream || e.Version != r.FirstVersion+int64(i) ||
			!bytes.Equal(compact(e.Data), data) || e.Metadata != want.Metadata {
			t.Fatalf("body %q: stored %s for event %d of the request, want %+v in %s at version %d", body, encoded, i, want, req.Stream, r.FirstVersion+int64(i))
		}
	}
}

func compact(raw []byte) []byte {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}
