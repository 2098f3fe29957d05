package order_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/internal/view"
	"github.com/msdemo/msdemo/services/order"
)

// TestAnnouncesChangedOrders follows the view exchange as a site does: after a start the
// service announces All; then each change of an order is announced with its owner, and
// when an announcement arrives the order already reads as it announced (the read needs no
// retry), until the invoice's step.
func TestAnnouncesChangedOrders(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.runParticipants(reserveBoth)
	pid := h.addProduct(300)
	h.stopService()

	conn := testenv.Bus(t)
	changes := make(chan view.Change, 100)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	exchange := view.ExchangeFor(h.sys.Exchange)
	if err := conn.DeclareExchange(ctx, exchange, "topic"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.DeleteExchange(ctx, exchange)
	})
	if _, err := conn.Consume(ctx, bus.QueueConfig{Exchange: exchange, Keys: []string{view.Orders}, MaxAttempts: 1},
		func(ctx context.Context, d bus.Delivery) error {
			c, err := view.Parse(d.Body)
			if err != nil {
				t.Errorf("announcement %s: %v", d.Body, err)
				return nil
			}
			changes <- c
			return nil
		}); err != nil {
		t.Fatal(err)
	}
	next := func(what string) view.Change {
		t.Helper()
		select {
		case c := <-changes:
			return c
		case <-time.After(15 * time.Second):
			t.Fatalf("no announcement within 15 s, want %s", what)
			return view.Change{}
		}
	}

	h.start()
	if c := next("all after the start"); !c.All || c.View != view.Orders {
		t.Fatalf("first announcement after the start: got %+v, want all of view order", c)
	}

	a := h.place("ann", pid, 1)
	sawCreated, invoiced := false, false
	for {
		c := next("the order's changes up to its invoice")
		if c.All {
			continue
		}
		if c.ID != a.ID || c.Owner != "ann" || c.View != view.Orders {
			t.Fatalf("got announcement %+v, want order %s of ann", c, a.ID)
		}
		sawCreated = sawCreated || c.Created
		var o order.Order
		if status, _ := h.do("GET", "/order/orders/"+c.ID, h.customer("ann"), nil, &o); status != http.StatusOK || o.Version < c.Version {
			t.Fatalf("GET the announced order: got %d at version %d, want 200 at version >= %d", status, o.Version, c.Version)
		}
		if o.Status == order.Approved && !invoiced {
			invoiced = true
			h.appendEvent("invoice-"+a.ID, event.InvoiceIssued, map[string]any{"order_id": a.ID, "customer": "ann", "total_cents": 300})
		}
		if hasStep(o, order.StepInvoiced) {
			break
		}
	}
	if !sawCreated {
		t.Error("no announcement of the order said it was created")
	}
}
