package order_test

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/services/order"
)

// fieldErrors is the body of a 4xx answer.
type fieldErrors struct {
	Error  string            `json:"error"`
	Fields map[string]string `json:"fields"`
}

// An order of several lines is approved when every line's stock and the credit are
// reserved; one line that cannot be reserved rejects it, naming the line. The lines keep
// the products' names and prices; a line of an unknown product refuses the whole order.
func TestOrdersOfSeveralLines(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.runParticipants(func(p order.Placed) []reply {
		lines := p.All()
		if p.Customer != "nomug" || len(lines) < 2 {
			return reserveBoth(p)
		}
		return []reply{stockOf(p, lines[0], event.ProductStockReserved, ""),
			stockOf(p, lines[1], event.ProductStockRejected, "out of stock"), credit(p, event.CustomerCreditReserved, "")}
	})
	tea, mug := h.addProduct(250), h.addProduct(900)
	lines := map[string]any{"lines": []map[string]any{{"product_id": tea, "quantity": 2}, {"product_id": mug, "quantity": 1}}}
	var a placedAnswer
	if status, _ := h.do("POST", "/order/orders", h.customer("ann"), lines, &a); status != http.StatusAccepted {
		t.Fatalf("place two lines: got %d, want 202", status)
	}
	o := h.waitDecided(a.ID)
	want := []order.Line{{ProductID: tea, Name: "Tea " + tea, Quantity: 2, UnitPriceCents: 250},
		{ProductID: mug, Name: "Tea " + mug, Quantity: 1, UnitPriceCents: 900}}
	if o.Status != order.Approved || o.TotalCents != 1400 || len(o.Lines) != 2 || o.Lines[0] != want[0] || o.Lines[1] != want[1] {
		t.Errorf("got %+v, want approved, lines %+v, total 1400", o, want)
	}

	if status, _ := h.do("POST", "/order/orders", h.customer("nomug"), lines, &a); status != http.StatusAccepted {
		t.Fatalf("place two lines: got %d, want 202", status)
	}
	if o := h.waitDecided(a.ID); o.Status != order.Rejected || o.Reason != "Tea "+mug+" (line 2): out of stock" {
		t.Errorf("second line out of stock: got %s %q, want rejected, naming line 2", o.Status, o.Reason)
	}

	var e fieldErrors
	bad := map[string]any{"lines": []map[string]any{{"product_id": tea, "quantity": 1}, {"product_id": "nosuchthing", "quantity": 1}}}
	if status, _ := h.do("POST", "/order/orders", h.customer("ann"), bad, &e); status != http.StatusBadRequest ||
		e.Fields["lines.1.product_id"] != "no such product" {
		t.Errorf("a line of an unknown product: got %d %+v, want 400 on lines.1.product_id", status, e)
	}
	var list struct {
		Orders []order.Order `json:"orders"`
	}
	if h.do("GET", "/order/orders", h.manager(), nil, &list); len(list.Orders) != 2 {
		t.Errorf("got %d orders, want the 2 placed, not the refused one", len(list.Orders))
	}
}

// cart is GET /order/cart's answer.
type cart struct {
	Lines []struct {
		ProductID string `json:"product_id"`
		Name      string `json:"name"`
		Quantity  int64  `json:"quantity"`
		Available bool   `json:"available"`
	} `json:"lines"`
	TotalCents int64 `json:"total_cents"`
	Version    int64 `json:"version"`
}

// quantities returns the cart's lines as product id → quantity, in order.
func (c cart) quantities() []string {
	var q []string
	for _, l := range c.Lines {
		q = append(q, l.ProductID+"="+strconv.FormatInt(l.Quantity, 10))
	}
	return q
}

// A customer's cart: lines are set, changed and removed; bad input changes nothing; the
// cart is the customer's own and survives a restart; checking out places one order of
// every line and empties the cart, and two checkouts sent at once place one order.
func TestCart(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.runParticipants(reserveBoth)
	tea, mug := h.addProduct(250), h.addProduct(900)
	ann := h.customer("ann")
	get := func(token string) cart {
		t.Helper()
		var c cart
		if status, _ := h.do("GET", "/order/cart", token, nil, &c); status != http.StatusOK {
			t.Fatalf("GET /order/cart: got %d, want 200", status)
		}
		return c
	}
	set := func(id string, quantity any, wantStatus int) cart {
		t.Helper()
		var c cart
		if status, _ := h.do("PUT", "/order/cart/lines/"+id, ann, map[string]any{"quantity": quantity}, &c); status != wantStatus {
			t.Fatalf("PUT line %s = %v: got %d, want %d", id, quantity, status, wantStatus)
		}
		return c
	}
	if c := get(ann); len(c.Lines) != 0 || c.Version != 0 {
		t.Errorf("a new customer's cart: got %+v, want empty at version 0", c)
	}
	set(tea, 2, http.StatusOK)
	c := set(mug, 1, http.StatusOK)
	if got := c.quantities(); len(got) != 2 || got[0] != tea+"=2" || got[1] != mug+"=1" || c.TotalCents != 1400 {
		t.Errorf("after adding 2 tea and 1 mug: got %v total %d, want [tea=2 mug=1] total 1400", got, c.TotalCents)
	}
	if c = set(tea, 3, http.StatusOK); c.quantities()[0] != tea+"=3" || len(c.Lines) != 2 {
		t.Errorf("after changing tea to 3: got %v", c.quantities())
	}
	version := c.Version
	set("nosuchthing", 1, http.StatusBadRequest)
	set(tea, 0, http.StatusBadRequest)
	set(tea, 1001, http.StatusBadRequest)
	set(tea, "2", http.StatusBadRequest)
	if status, _ := h.do("GET", "/order/cart", h.manager(), nil, nil); status != http.StatusForbidden {
		t.Errorf("a manager's cart: got %d, want 403", status)
	}
	if c := get(h.customer("bob")); len(c.Lines) != 0 {
		t.Errorf("bob sees lines %v, want his own empty cart", c.quantities())
	}
	// "Add to cart" adds: four adds at once all count.
	var adds sync.WaitGroup
	for range 4 {
		adds.Go(func() {
			if status, _ := h.do("POST", "/order/cart/lines", ann, map[string]any{"product_id": mug, "quantity": 1}, nil); status != http.StatusOK {
				t.Errorf("add a mug: got %d, want 200", status)
			}
		})
	}
	adds.Wait()
	if c = get(ann); c.quantities()[1] != mug+"=5" {
		t.Errorf("after 4 adds of 1 mug to 1: got %v, want mug=5", c.quantities())
	}
	if status, _ := h.do("POST", "/order/cart/lines", ann, map[string]any{"product_id": mug, "quantity": 996}, nil); status != http.StatusBadRequest {
		t.Errorf("add 996 mugs to 5: got %d, want 400 (at most 1000)", status)
	}
	version = get(ann).Version
	if status, _ := h.do("DELETE", "/order/cart/lines/"+mug, ann, nil, &c); status != http.StatusOK || len(c.Lines) != 1 {
		t.Errorf("remove the mug: got %d %v, want 200 with tea only", status, c.quantities())
	}
	if c.Version != version+1 {
		t.Errorf("cart at version %d after the refused changes and a removal from %d, want %d", c.Version, version, version+1)
	}
	set(mug, 1, http.StatusOK)

	h.stopService()
	h.start()
	if c := get(ann); len(c.Lines) != 2 {
		t.Errorf("after a restart: got %v, want the 2 lines", c.quantities())
	}

	// A checkout of the cart as it was seen, when it changed since, is refused.
	seen := get(ann).Version
	if status, _ := h.do("POST", "/order/cart/checkout", ann, map[string]any{"version": seen - 1}, nil); status != http.StatusConflict {
		t.Errorf("checkout of a cart changed since it was seen: got %d, want 409", status)
	}

	var wg sync.WaitGroup
	ids := make([]string, 2)
	statuses := make([]int, 2)
	for i := range ids {
		wg.Go(func() {
			var a placedAnswer
			statuses[i], _ = h.do("POST", "/order/cart/checkout", ann, map[string]any{"version": seen}, &a)
			ids[i] = a.ID
		})
	}
	wg.Wait()
	var id string
	for i, status := range statuses {
		switch {
		case status == http.StatusAccepted && (id == "" || id == ids[i]):
			id = ids[i]
		case status == http.StatusBadRequest || status == http.StatusConflict: // the other emptied the cart first
		default:
			t.Errorf("two checkouts at once: got %v with ids %v, want 202 with one order id (or 400/409: emptied)", statuses, ids)
		}
	}
	if id == "" {
		t.Fatalf("no checkout placed an order: %v", statuses)
	}
	o := h.waitDecided(id)
	if o.Status != order.Approved || len(o.Lines) != 2 || o.Lines[0].Quantity != 3 || o.TotalCents != 3*250+900 {
		t.Errorf("the cart's order: got %+v, want approved, 3 tea and 1 mug", o)
	}
	if c := get(ann); len(c.Lines) != 0 {
		t.Errorf("after checkout the cart holds %v, want nothing", c.quantities())
	}
	var list struct {
		Orders []order.Order `json:"orders"`
	}
	if h.do("GET", "/order/orders", ann, nil, &list); len(list.Orders) != 1 {
		t.Errorf("ann has %d orders, want the 1 checkout", len(list.Orders))
	}
	var e fieldErrors
	if status, _ := h.do("POST", "/order/cart/checkout", ann, nil, &e); status != http.StatusBadRequest || e.Fields["lines"] == "" {
		t.Errorf("checkout of an empty cart: got %d %+v, want 400 on lines", status, e)
	}

	// A product deleted while in the cart is shown as no longer available, and the
	// checkout is refused, naming it, until it is removed.
	set(tea, 1, http.StatusOK)
	h.appendEvent("product-"+tea, event.ProductDeleted, map[string]any{})
	h.waitCaughtUp()
	if c := get(ann); len(c.Lines) != 1 || c.Lines[0].Available || c.TotalCents != 0 {
		t.Errorf("a deleted product in the cart: got %+v, want it unavailable, total 0", c)
	}
	if status, _ := h.do("POST", "/order/cart/checkout", ann, nil, &e); status != http.StatusBadRequest ||
		e.Fields["lines.0.product_id"] != "the product was deleted" {
		t.Errorf("checkout with a deleted product: got %d %+v, want 400 on lines.0.product_id", status, e)
	}
}

// A checkout whose request died after it recorded cart.checked-out, before it placed the
// order, still places the order: the read model does, when it applies the checkout.
func TestCheckoutRecordedIsPlaced(t *testing.T) {
	t.Parallel()
	h := newHarness(t, nil)
	h.runParticipants(reserveBoth)
	tea := h.addProduct(250)
	if status, _ := h.do("PUT", "/order/cart/lines/"+tea, h.customer("ann"), map[string]any{"quantity": 2}, nil); status != http.StatusOK {
		t.Fatalf("put tea in the cart: got %d, want 200", status)
	}
	id := order.CartOrderID("ann", 1)
	h.appendEvent("cart-ann", event.CartCheckedOut, map[string]any{"order_id": id,
		"lines": []map[string]any{{"product_id": tea, "name": "Tea", "quantity": 2, "unit_price_cents": 250}}})
	testenv.Eventually(t, 10*time.Second, "the read model places the recorded checkout's order", func() bool {
		status, _ := h.do("GET", "/order/orders/"+string(id), h.manager(), nil, nil)
		return status == http.StatusOK
	})
	o := h.waitDecided(string(id))
	if o.Status != order.Approved || o.Customer != "ann" || len(o.Lines) != 1 || o.TotalCents != 500 {
		t.Errorf("the recorded checkout's order: got %+v, want ann's approved order of 2 tea, 500", o)
	}
	var c cart
	if h.do("GET", "/order/cart", h.customer("ann"), nil, &c); len(c.Lines) != 0 {
		t.Errorf("the cart after the recorded checkout: got %v, want empty", c.quantities())
	}
}
