package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/registry"
)

// soakCheck is one promise the soak checked at the end.
type soakCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// checker runs the end checks on a shop whose every component is back up.
type checker struct {
	l      *soakLoad
	token  string // manager
	events []event.Stored
	byStr  map[string][]event.Stored
	out    []soakCheck
}

func (c *checker) add(name string, problems []string, detail string) {
	ck := soakCheck{Name: name, OK: len(problems) == 0, Detail: detail}
	if !ck.OK {
		if len(problems) > 5 {
			problems = append(problems[:5], fmt.Sprintf("... and %d more", len(problems)-5))
		}
		ck.Detail = strings.Join(problems, "; ")
	}
	c.out = append(c.out, ck)
}

// getAll reads every page of a list the services page by next_after (limit 500), and
// returns the items of field.
func (c *checker) getAll(ctx context.Context, path, field string) ([]json.RawMessage, error) {
	var items []json.RawMessage
	after := ""
	for {
		var page map[string]json.RawMessage
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		u := path + sep + "limit=500"
		if after != "" {
			u += "&after=" + url.QueryEscape(after)
		}
		if st := c.l.api(ctx, http.MethodGet, u, c.token, nil, &page); st != http.StatusOK {
			return nil, fmt.Errorf("GET %s: got %d", u, st)
		}
		var list []json.RawMessage
		_ = json.Unmarshal(page[field], &list)
		items = append(items, list...)
		var next string
		_ = json.Unmarshal(page["next_after"], &next)
		if next == "" {
			return items, nil
		}
		after = next
	}
}

// readFeed reads the whole feed from the event store, 1000 events a page.
func (c *checker) readFeed(ctx context.Context) error {
	base := "http://" + c.l.shop.addr[registry.EventStore]
	var after int64
	for {
		var page struct {
			Events    []event.Stored `json:"events"`
			NextAfter int64          `json:"next_after"`
			Head      int64          `json:"head"`
		}
		if st := c.l.call(ctx, http.MethodGet, fmt.Sprintf("%s/events?after=%d&limit=1000", base, after), "", nil, nil, &page); st != http.StatusOK {
			return fmt.Errorf("read the feed after %d: got %d", after, st)
		}
		c.events = append(c.events, page.Events...)
		if len(page.Events) == 0 || page.NextAfter >= page.Head {
			break
		}
		after = page.NextAfter
	}
	c.byStr = map[string][]event.Stored{}
	for _, e := range c.events {
		c.byStr[e.Stream] = append(c.byStr[e.Stream], e)
	}
	return nil
}

// awaitDecisions waits until every order the clients placed is decided, for at most d.
func (c *checker) awaitDecisions(ctx context.Context, d time.Duration) []string {
	c.l.mu.Lock()
	pending := append([]string(nil), c.l.placed...)
	c.l.mu.Unlock()
	deadline := time.Now().Add(d)
	for len(pending) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		var still []string
		for _, id := range pending {
			var o orderView
			if c.l.api(ctx, http.MethodGet, "/order/orders/"+id, c.token, nil, &o) != http.StatusOK || !o.decided() {
				still = append(still, id)
			}
		}
		pending = still
		if len(pending) > 0 {
			time.Sleep(time.Second)
		}
	}
	return pending
}

// snapshot is what the read models show through the API: every product, customer, order
// and invoice, and the revenue.
func (c *checker) snapshot(ctx context.Context) (map[string]string, error) {
	views := map[string]string{}
	for _, l := range []struct{ path, field string }{{"/product/products", "products"}, {"/product/categories", "categories"},
		{"/customer/users", "users"}, {"/order/orders", "orders"}, {"/accounting/invoices", "invoices"}} {
		items, err := c.getAll(ctx, l.path, l.field)
		if err != nil {
			return nil, err
		}
		for i, it := range items {
			var v struct {
				ID       string `json:"id"`
				Username string `json:"username"`
				OrderID  string `json:"order_id"`
			}
			_ = json.Unmarshal(it, &v)
			key := v.ID + v.Username + v.OrderID
			if key == "" {
				key = fmt.Sprint(i)
			}
			views[l.path+"/"+key] = string(it)
		}
	}
	var rev json.RawMessage
	if st := c.l.api(ctx, http.MethodGet, "/accounting/revenue", c.token, nil, &rev); st != http.StatusOK {
		return nil, fmt.Errorf("GET /accounting/revenue: got %d", st)
	}
	views["/accounting/revenue"] = string(rev)
	return views, nil
}

// settledSnapshot takes snapshots a second apart until two agree (the services apply each
// other's last events a moment after the orders are decided), for at most d.
func (c *checker) settledSnapshot(ctx context.Context, d time.Duration) (map[string]string, error) {
	before, err := c.snapshot(ctx)
	for deadline := time.Now().Add(d); ; {
		time.Sleep(time.Second)
		again, err2 := c.snapshot(ctx)
		if err == nil && err2 == nil && maps.Equal(before, again) {
			return again, nil
		}
		if time.Now().After(deadline) {
			if err2 == nil {
				err2 = fmt.Errorf("the read models still change %s after the load ended", d)
			}
			return nil, err2
		}
		before, err = again, err2
	}
}

// checkFeed: the feed has every position from 1 to its head once, no event id twice, and
// each stream's versions run 1, 2, 3...
func (c *checker) checkFeed() {
	var problems []string
	ids := map[string]bool{}
	for i, e := range c.events {
		if e.Position != int64(i+1) {
			problems = append(problems, fmt.Sprintf("position %d at index %d: a gap or a repeat", e.Position, i))
			break
		}
		if ids[e.ID] {
			problems = append(problems, fmt.Sprintf("event %s stored twice", e.ID))
		}
		ids[e.ID] = true
	}
	for stream, es := range c.byStr {
		for i, e := range es {
			if e.Version != int64(i+1) {
				problems = append(problems, fmt.Sprintf("%s: version %d at index %d", stream, e.Version, i))
				break
			}
		}
	}
	c.add("feed gap-free, no event stored twice", problems, fmt.Sprintf("%d events in %d streams", len(c.events), len(c.byStr)))
}

// balance replays one aggregate's quantity (a product's stock, a customer's credit) from
// its stream: set by the events of set, less each reservation, plus each release of a
// reservation. It returns the final value and the problems: a value below zero (sold or
// spent what was not there), a release of what was not reserved.
func balance(es []event.Stored, set map[string]string, reserved, released, field string) (int64, []string) {
	var v int64
	var problems []string
	held := map[string]int64{}
	for _, e := range es {
		var d map[string]any
		_ = json.Unmarshal(e.Data, &d)
		num := func(k string) int64 { f, _ := d[k].(float64); return int64(f) }
		order, _ := d["order_id"].(string)
		switch e.Type {
		case reserved:
			held[order] = num(field)
			v -= num(field)
		case released:
			amount, ok := held[order]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s v%d releases order %s, which it did not reserve", e.Stream, e.Version, order))
			}
			delete(held, order)
			v += amount
		default:
			if k, ok := set[e.Type]; ok {
				v = num(k)
			}
		}
		if v < 0 {
			problems = append(problems, fmt.Sprintf("%s is at %d after v%d (%s)", e.Stream, v, e.Version, e.Type))
		}
	}
	return v, problems
}

// checkBalances: no product's stock and no customer's credit ever went below zero, and
// each read model shows what its stream adds up to.
func (c *checker) checkBalances(snap map[string]string) {
	for _, b := range []struct {
		check, what       string
		agg               event.Aggregate
		set               map[string]string // the events that set the value: its field
		reserved, release string
		amount, shown     string // the field of a reservation's amount; of the value in the read model
		view              string // the read model's path of the aggregate
	}{
		{"no oversell", "stock", event.Product, map[string]string{event.ProductAdded: "units_in_stock", event.ProductUpdated: "units_in_stock"},
			event.ProductStockReserved, event.ProductStockReleased, "quantity", "units_in_stock", "/product/products/"},
		{"no overspend", "credit", event.Customer, map[string]string{event.CustomerRegistered: "credit_cents", event.CustomerCreditSet: "credit_cents"},
			event.CustomerCreditReserved, event.CustomerCreditReleased, "amount_cents", "credit_cents", "/customer/users/"},
	} {
		var problems []string
		n := 0
		for stream, es := range c.byStr {
			id, ok := b.agg.ID(stream)
			if !ok {
				continue
			}
			n++
			v, p := balance(es, b.set, b.reserved, b.release, b.amount)
			problems = append(problems, p...)
			if raw, ok := snap[b.view+id]; ok {
				var view map[string]any
				_ = json.Unmarshal([]byte(raw), &view)
				if shown, _ := view[b.shown].(float64); int64(shown) != v {
					problems = append(problems, fmt.Sprintf("%s shows %s %d, its events add up to %d", stream, b.what, int64(shown), v))
				}
			}
		}
		c.add(b.check, problems, fmt.Sprintf("%s of %d %ss replayed from their events, never below 0, equal to the read model", b.what, n, b.agg))
	}
}

// checkOrders: every order placed is decided once in the event store and the order read
// model agrees; every approval reserved the stock of each line and the credit, kept them,
// and has exactly one invoice, in the event store and in accounting's read model; no
// rejection has one, nor keeps a reservation.
func (c *checker) checkOrders(snap map[string]string, undecided []string) {
	var decidedProblems, invoiceProblems []string
	for _, id := range undecided {
		decidedProblems = append(decidedProblems, "order "+id+" still pending")
	}
	// what each order's id was given in the streams of the saga's participants
	has := map[string]map[string]int{} // order id -> event type -> count
	lines := map[string]int{}          // order id -> lines of its order.placed
	for _, e := range c.events {
		var d struct {
			OrderID string `json:"order_id"`
		}
		_ = json.Unmarshal(e.Data, &d)
		if id, ok := event.Order.ID(e.Stream); ok {
			d.OrderID = id
			if e.Type == event.OrderPlaced {
				var placed event.OrderLines
				_ = json.Unmarshal(e.Data, &placed)
				lines[id] = len(placed.All())
			}
		}
		if id, ok := event.Invoice.ID(e.Stream); ok {
			d.OrderID = id
		}
		if d.OrderID == "" {
			continue
		}
		if has[d.OrderID] == nil {
			has[d.OrderID] = map[string]int{}
		}
		has[d.OrderID][e.Type]++
	}
	approved, rejected := 0, 0
	for id, n := range has {
		if n[event.OrderPlaced] == 0 {
			continue
		}
		var view struct {
			Status string `json:"status"`
		}
		_ = json.Unmarshal([]byte(snap["/order/orders/"+id]), &view)
		switch {
		case n[event.OrderApproved] == 1 && n[event.OrderRejected] == 0:
			approved++
			if view.Status != "approved" {
				decidedProblems = append(decidedProblems, fmt.Sprintf("order %s approved in the event store, %q in the read model", id, view.Status))
			}
			if n[event.ProductStockReserved] != lines[id] || n[event.CustomerCreditReserved] != 1 ||
				n[event.ProductStockReleased] != 0 || n[event.CustomerCreditReleased] != 0 {
				invoiceProblems = append(invoiceProblems, fmt.Sprintf("approved order %s has events %v", id, n))
			}
			if n[event.InvoiceIssued] != 1 {
				invoiceProblems = append(invoiceProblems, fmt.Sprintf("approved order %s has %d invoices in the event store", id, n[event.InvoiceIssued]))
			}
			if _, ok := snap["/accounting/invoices/"+id]; !ok {
				invoiceProblems = append(invoiceProblems, fmt.Sprintf("approved order %s has no invoice in accounting's read model", id))
			}
		case n[event.OrderRejected] == 1 && n[event.OrderApproved] == 0:
			rejected++
			if view.Status != "rejected" {
				decidedProblems = append(decidedProblems, fmt.Sprintf("order %s rejected in the event store, %q in the read model", id, view.Status))
			}
			if n[event.InvoiceIssued] != 0 {
				invoiceProblems = append(invoiceProblems, fmt.Sprintf("rejected order %s has an invoice", id))
			}
			if n[event.ProductStockReserved] != n[event.ProductStockReleased] || n[event.CustomerCreditReserved] != n[event.CustomerCreditReleased] {
				invoiceProblems = append(invoiceProblems, fmt.Sprintf("rejected order %s keeps a reservation: events %v", id, n))
			}
		default:
			decidedProblems = append(decidedProblems, fmt.Sprintf("order %s: %d approvals, %d rejections", id, n[event.OrderApproved], n[event.OrderRejected]))
		}
	}
	invoices := 0
	for k := range snap {
		if strings.HasPrefix(k, "/accounting/invoices/") {
			invoices++
		}
	}
	if invoices != approved {
		invoiceProblems = append(invoiceProblems, fmt.Sprintf("%d invoices in accounting's read model for %d approvals", invoices, approved))
	}
	c.add("every order decided", decidedProblems, fmt.Sprintf("%d approved, %d rejected", approved, rejected))
	c.add("every approval has exactly one invoice, every line reserved; no rejection keeps a reservation", invoiceProblems, fmt.Sprintf("%d invoices", invoices))
}

// checkAcks: every write a client got a 2xx for is in the event store (its event, at the
// version the answer gave, with the data the client sent), and the read model is at that
// version or later.
func (c *checker) checkAcks(snap map[string]string) {
	c.l.mu.Lock()
	acks := append([]ack(nil), c.l.acks...)
	c.l.mu.Unlock()
	var problems []string
	for _, a := range acks {
		found := false
		for _, e := range c.byStr[a.Stream] {
			if e.Type != a.Type || (a.Version != 0 && e.Version != a.Version) {
				continue
			}
			var d map[string]any
			_ = json.Unmarshal(e.Data, &d)
			found = true
			for k, v := range a.Fields {
				found = found && reflect.DeepEqual(d[k], v)
			}
			if found {
				break
			}
		}
		if !found {
			problems = append(problems, fmt.Sprintf("%s acknowledged (%s v%d %v) is not in the event store", a.What, a.Stream, a.Version, a.Fields))
			continue
		}
		var key string
		if id, ok := event.Product.ID(a.Stream); ok {
			key = "/product/products/" + id
		} else if name, ok := event.Customer.ID(a.Stream); ok {
			key = "/customer/users/" + name
		} else if id, ok := event.Order.ID(a.Stream); ok {
			key = "/order/orders/" + id
		}
		var view struct {
			Version int64 `json:"version"`
		}
		raw, ok := snap[key]
		_ = json.Unmarshal([]byte(raw), &view)
		if !ok || view.Version < a.Version {
			problems = append(problems, fmt.Sprintf("%s acknowledged at %s v%d: the read model shows v%d (found: %v)", a.What, a.Stream, a.Version, view.Version, ok))
		}
	}
	c.add("no lost acknowledged write", problems, fmt.Sprintf("%d acknowledged writes found in the event store and the read models", len(acks)))
}

// checkRebuild stops the four services, rebuilds every read model from the event store
// with `msdemo rebuild -target=all`, starts them again and compares what the API shows
// with before.
func (c *checker) checkRebuild(ctx context.Context, before map[string]string) {
	s := c.l.shop
	services := registry.Subscribers()
	for _, name := range services {
		s.kill(name)
	}
	var problems []string
	if err := s.rebuild(ctx); err != nil {
		problems = append(problems, err.Error())
	}
	for _, name := range services {
		if err := s.start(name); err != nil {
			problems = append(problems, err.Error())
		}
	}
	for _, name := range services {
		if err := s.waitHealthy(ctx, name, 120*time.Second); err != nil {
			problems = append(problems, err.Error())
		}
	}
	var after map[string]string
	if len(problems) == 0 {
		if err := s.waitRoutable(ctx, 60*time.Second); err != nil {
			problems = append(problems, err.Error())
		} else if after, err = c.settledSnapshot(ctx, 30*time.Second); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if after != nil {
		for _, k := range sortedKeys(before) {
			if after[k] != before[k] {
				problems = append(problems, fmt.Sprintf("after the rebuild %s is %s, was %s", k, after[k], before[k]))
			}
		}
		for k := range after {
			if _, ok := before[k]; !ok {
				problems = append(problems, "after the rebuild there is "+k)
			}
		}
	}
	c.add("each read model equal to a rebuild", problems, fmt.Sprintf("%d views of 4 read models compared", len(before)))
}
