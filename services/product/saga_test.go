package product_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/idgen"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/services/product"
)

// sagaShop is the product service with an event store and a gateway; the test acts as
// the order service, appending order.placed and order.rejected itself.
type sagaShop struct {
	*shop
	t        *testing.T
	es       *eventclient.Client
	conn     *bus.Conn
	category product.CategoryID
}

func startSagaShop(t *testing.T) *sagaShop {
	t.Helper()
	s := &sagaShop{shop: startShop(t), t: t, conn: testenv.Bus(t)}
	s.es = eventclient.New(s.conn, s.sys.EventstoreURL, s.sys.AppendQueue, s.sys.Exchange)
	s.category = s.addCategory(t, "Tea").ID
	return s
}

// newProduct adds a product through the API.
func (s *sagaShop) newProduct(name string, priceCents, units int64) product.Product {
	s.t.Helper()
	var p product.Product
	must(s.t, 201, "POST", s.api+"/products", s.manager, fmt.Sprintf(`{"name":%q,"category_id":%q,
		"price_cents":%d,"units_in_stock":%d}`, name, s.category, priceCents, units), &p)
	return p
}

// appendEvent appends one event with a new id at any version.
func (s *sagaShop) appendEvent(stream, typ string, data any) {
	s.t.Helper()
	raw, _ := json.Marshal(data)
	e := event.New{ID: idgen.New(), Type: typ, Data: raw}
	reply, err := s.es.Append(context.Background(), event.AppendRequest{Stream: stream, Events: []event.New{e}})
	if err != nil || !reply.OK {
		s.t.Fatalf("append %s to %s: got %+v, %v, want ok", typ, stream, reply, err)
	}
}

// place appends order.placed of a new order and returns its id.
func (s *sagaShop) place(p product.ProductID, quantity, unitPriceCents int64) string {
	s.t.Helper()
	id := randomID(12)
	s.appendEvent("order-"+id, event.OrderPlaced, map[string]any{"order_id": id, "customer": "ann",
		"product_id": p, "quantity": quantity, "unit_price_cents": unitPriceCents, "total_cents": quantity * unitPriceCents})
	return id
}

// line is a line of an order that placeLines places.
type line struct {
	product        product.ProductID
	quantity, cost int64
}

// placeLines appends order.placed of a new order of lines and returns its id. (place
// appends an order of one product in the shape of before orders had lines, which the
// service reads as well.)
func (s *sagaShop) placeLines(lines ...line) string {
	s.t.Helper()
	id := randomID(12)
	var ls []map[string]any
	total := int64(0)
	for _, l := range lines {
		ls = append(ls, map[string]any{"product_id": l.product, "name": "x", "quantity": l.quantity, "unit_price_cents": l.cost})
		total += l.quantity * l.cost
	}
	s.appendEvent("order-"+id, event.OrderPlaced, map[string]any{"order_id": id, "customer": "ann", "lines": ls, "total_cents": total})
	return id
}

// lineState is the state of the line of product id of order ("" for not answered).
func (s *sagaShop) lineState(order string, id product.ProductID) product.ReservationState {
	s.t.Helper()
	db := s.db()
	defer db.Close()
	var state product.ReservationState
	err := db.QueryRow(`SELECT state FROM reservations WHERE order_id = ? AND product_id = ?`, order, id).Scan(&state)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		s.t.Fatal(err)
	}
	return state
}

// reject appends order.rejected of order id.
func (s *sagaShop) reject(id string) {
	s.t.Helper()
	s.appendEvent("order-"+id, event.OrderRejected, map[string]any{"order_id": id, "customer": "ann", "reason": "not enough credit"})
}

// reservations reads the records of orders from the SQLite file, by order id.
func (s *sagaShop) reservations() map[string]product.Reservation {
	s.t.Helper()
	db := s.db()
	defer db.Close()
	rows, err := db.Query(`SELECT product_id, order_id, quantity, state FROM reservations`)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	rs := map[string]product.Reservation{}
	for rows.Next() {
		var r product.Reservation
		if err := rows.Scan(&r.ProductID, &r.OrderID, &r.Quantity, &r.State); err != nil {
			s.t.Fatal(err)
		}
		rs[r.OrderID] = r
	}
	return rs
}

// units reads the units in stock of product id from the SQLite file (deleted or not).
func (s *sagaShop) units(id product.ProductID) int64 {
	s.t.Helper()
	db := s.db()
	defer db.Close()
	var n int64
	if err := db.QueryRow(`SELECT units_in_stock FROM products WHERE id = ?`, id).Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

func (s *sagaShop) db() *sql.DB {
	s.t.Helper()
	db, err := sql.Open("sqlite", "file:"+s.cfg.DBPath+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		s.t.Fatal(err)
	}
	return db
}

// waitAnswered waits until the read model holds an answer to each order.
func (s *sagaShop) waitAnswered(orders ...string) map[string]product.Reservation {
	s.t.Helper()
	var rs map[string]product.Reservation
	testenv.Eventually(s.t, 30*time.Second, fmt.Sprintf("the product service answers %d orders", len(orders)), func() bool {
		rs = s.reservations()
		for _, id := range orders {
			if rs[id].State == "" {
				return false
			}
		}
		return true
	})
	return rs
}

func (s *sagaShop) waitState(order string, state product.ReservationState) {
	s.t.Helper()
	testenv.Eventually(s.t, 30*time.Second, fmt.Sprintf("order %s is %s", order, state), func() bool {
		return s.reservations()[order].State == state
	})
}

// stream returns product id's stream as the event store holds it.
func (s *sagaShop) stream(id product.ProductID) []event.Stored {
	s.t.Helper()
	events, _, err := s.es.Stream(context.Background(), "product-"+string(id))
	if err != nil {
		s.t.Fatal(err)
	}
	return events
}

// checkStream checks product id's stream: at most one event of each saga type per order,
// a release only after a reservation, and the stock never below zero.
func (s *sagaShop) checkStream(id product.ProductID) {
	s.t.Helper()
	var units int64
	seen := map[string]bool{}
	for _, e := range s.stream(id) {
		var d struct {
			product.StockData
			UnitsInStock int64 `json:"units_in_stock"`
		}
		_ = json.Unmarshal(e.Data, &d)
		switch e.Type {
		case event.ProductAdded, event.ProductUpdated:
			units = d.UnitsInStock
		case event.ProductStockReserved:
			units -= d.Quantity
		case event.ProductStockReleased:
			units += d.Quantity
		}
		if units < 0 {
			s.t.Errorf("product %s: got %d units after version %d, want never below 0", id, units, e.Version)
		}
		if !strings.HasPrefix(e.Type, "product.stock-") {
			continue
		}
		key := d.OrderID + " " + e.Type
		if seen[key] {
			s.t.Errorf("product %s: got %s for order %s twice, want once", id, e.Type, d.OrderID)
		}
		seen[key] = true
		if e.Type == event.ProductStockReleased && !seen[d.OrderID+" "+event.ProductStockReserved] {
			s.t.Errorf("product %s: got a release of order %s without a reservation", id, d.OrderID)
		}
		if seen[d.OrderID+" "+event.ProductStockReserved] && seen[d.OrderID+" "+event.ProductStockRejected] {
			s.t.Errorf("product %s: order %s both reserved and rejected", id, d.OrderID)
		}
	}
}

// checkRebuild waits until the service has applied every event in the store (its own
// decisions come back from the bus after it applied them, and move the checkpoint),
// stops it, and checks that Rebuild gives the same read model, reservations included.
func (s *sagaShop) checkRebuild() {
	s.t.Helper()
	testenv.Eventually(s.t, 30*time.Second, "the checkpoint reaches the store's head", func() bool {
		page, err := s.es.Feed(context.Background(), 0, 1, nil)
		if err != nil {
			s.t.Fatal(err)
		}
		db := s.db()
		defer db.Close()
		var position int64
		return db.QueryRow(`SELECT position FROM checkpoint`).Scan(&position) == nil && position == page.Head
	})
	s.stop()
	want, wantReservations := dump(s.t, s.cfg.DBPath), s.reservations()
	removeDB(s.t, s.cfg.DBPath)
	if err := product.Rebuild(context.Background(), s.cfg, testenv.Logger(s.t)); err != nil {
		s.t.Fatalf("Rebuild: %v", err)
	}
	equalDumps(s.t, "after Rebuild", dump(s.t, s.cfg.DBPath), want)
	if got := s.reservations(); !reflect.DeepEqual(got, wantReservations) {
		s.t.Errorf("reservations after Rebuild:\n got %v\nwant %v", got, wantReservations)
	}
}

// replay puts the events of the orders into the service's queue again, as a replay from
// the dead-letter queue does.
func (s *sagaShop) replay(orders ...string) {
	s.t.Helper()
	for _, id := range orders {
		events, _, err := s.es.Stream(context.Background(), "order-"+id)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, e := range events {
			body, _ := json.Marshal(e)
			err := s.conn.Publish(context.Background(), "", event.Queue(s.cfg.Subscription), bus.Message{ID: e.ID, Type: e.Type,
				Body: body, Headers: map[string]any{bus.ReplayHeader: time.Now().UTC().Format(time.RFC3339)}})
			if err != nil {
				s.t.Fatal(err)
			}
		}
	}
}

// randomID returns n random characters a-z, 2-7.
func randomID(n int) string { return idgen.Short(n) }

// TestSagaStock walks the product's part of the saga: a reservation takes the units at
// once; an order above the units left, at an old price or of a deleted product is
// rejected with its reason; a rejected order's reservation is released; a redelivered
// order event changes nothing.
func TestSagaStock(t *testing.T) {
	t.Parallel()
	s := startSagaShop(t)
	tea := s.newProduct("Tea", 1250, 5)
	gone := s.newProduct("Gone", 100, 5)
	must(t, 204, "DELETE", s.api+"/products/"+string(gone.ID), s.manager, "", nil)

	reserved := s.place(tea.ID, 3, 1250)
	tooMany := s.place(tea.ID, 3, 1250) // 2 left
	oldPrice := s.place(tea.ID, 1, 999)
	deleted := s.place(gone.ID, 1, 100)
	rest := s.place(tea.ID, 2, 1250)
	rs := s.waitAnswered(reserved, tooMany, oldPrice, deleted, rest)
	want := map[string]product.Reservation{
		reserved: {ProductID: tea.ID, OrderID: reserved, Quantity: 3, State: product.Reserved},
		tooMany:  {ProductID: tea.ID, OrderID: tooMany, State: product.Rejected},
		oldPrice: {ProductID: tea.ID, OrderID: oldPrice, State: product.Rejected},
		deleted:  {ProductID: gone.ID, OrderID: deleted, State: product.Rejected},
		rest:     {ProductID: tea.ID, OrderID: rest, Quantity: 2, State: product.Reserved},
	}
	if !reflect.DeepEqual(rs, want) {
		t.Fatalf("got reservations %v, want %v", rs, want)
	}
	var got product.Product
	must(t, 200, "GET", s.api+"/products/"+string(tea.ID), "", "", &got)
	if got.UnitsInStock != 0 || got.Version != 5 { // added and four answers
		t.Errorf("GET tea: got %d units at version %d, want 0 at version 5", got.UnitsInStock, got.Version)
	}
	reasons := map[string]string{}
	for _, p := range []product.ProductID{tea.ID, gone.ID} {
		for _, e := range s.stream(p) {
			var d product.StockData
			_ = json.Unmarshal(e.Data, &d)
			if e.Type == event.ProductStockRejected {
				reasons[d.OrderID] = d.Reason
			}
		}
	}
	wantReasons := map[string]string{tooMany: product.ReasonOutOfStock, oldPrice: product.ReasonPriceChanged,
		deleted: product.ReasonDeleted}
	if !reflect.DeepEqual(reasons, wantReasons) {
		t.Errorf("got reasons %v, want %v", reasons, wantReasons)
	}

	// placed -> reserved -> rejected -> released; a rejected order releases nothing.
	s.reject(reserved)
	s.reject(tooMany)
	s.waitState(reserved, product.Released)
	if n := s.units(tea.ID); n != 3 {
		t.Errorf("after the release: got %d units, want 3", n)
	}

	// An order of an unknown product is skipped: no stream is created.
	s.place("zzzzzzzzzz", 1, 100)

	// The order events delivered again: nothing changes.
	before := s.stream(tea.ID)
	s.replay(reserved, tooMany, oldPrice, deleted, rest)
	last := s.place(tea.ID, 1, 1250) // behind the replayed ones
	s.waitAnswered(last)
	after := s.stream(tea.ID)
	if len(after) != len(before)+1 || !reflect.DeepEqual(after[:len(before)], before) {
		t.Errorf("after redelivery: got %d events, want the %d before and the last order's answer", len(after), len(before))
	}
	if n := s.units(tea.ID); n != 2 {
		t.Errorf("after redelivery: got %d units, want 2", n)
	}
	if _, found, err := s.es.Stream(context.Background(), "product-zzzzzzzzzz"); err != nil || found {
		t.Errorf("product-zzzzzzzzzz: got found %v (%v), want no stream", found, err)
	}
	s.checkStream(tea.ID)
	s.checkStream(gone.ID)
	s.checkRebuild()
}

// TestSagaProductUpdateRace: a manager changes the product after an order was placed but
// before the service answered it. The service's append then conflicts; it reads the
// stream and decides on the product as the manager left it.
func TestSagaProductUpdateRace(t *testing.T) {
	t.Parallel()
	s := startSagaShop(t)
	fewer := s.newProduct("Fewer", 1000, 5)
	dearer := s.newProduct("Dearer", 1000, 5)
	more := s.newProduct("More", 1000, 1)
	warm := s.place(fewer.ID, 1, 1000)
	s.waitAnswered(warm)

	s.stop()
	update := func(p product.Product, price, units int64) {
		s.appendEvent("product-"+string(p.ID), event.ProductUpdated, product.ProductFields{Name: p.Name,
			CategoryID: s.category, PriceCents: price, UnitsInStock: units})
	}
	outOfStock := s.place(fewer.ID, 3, 1000)
	update(fewer, 1000, 2)
	priceChanged := s.place(dearer.ID, 1, 1000)
	update(dearer, 1100, 5)
	nowEnough := s.place(more.ID, 3, 1000)
	update(more, 1000, 10)
	s.start(t)

	rs := s.waitAnswered(outOfStock, priceChanged, nowEnough)
	if rs[outOfStock].State != product.Rejected || rs[priceChanged].State != product.Rejected ||
		rs[nowEnough].State != product.Reserved {
		t.Errorf("got %v, want rejected, rejected, reserved", rs)
	}
	settle := s.place(more.ID, 1, 1000) // the updates come from the bus after the decisions
	s.waitAnswered(settle)
	for p, want := range map[product.ProductID]int64{fewer.ID: 2, dearer.ID: 5, more.ID: 10 - 3 - 1} {
		if got := s.units(p); got != want {
			t.Errorf("product %s: got %d units, want %d", p, got, want)
		}
		s.checkStream(p)
	}
	s.checkRebuild()
}

// TestSagaScarcity: 50 units and 200 orders of one unit, appended at once while a
// manager edits the product's description: exactly 50 reserved, none left, never below
// zero.
func TestSagaScarcity(t *testing.T) {
	t.Parallel()
	s := startSagaShop(t)
	const units, orders = 50, 200
	tea := s.newProduct("Scarce tea", 500, units)
	var mu sync.Mutex
	var ids []string
	var next atomic.Int64
	var edits, conflicts atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for next.Add(1) <= orders {
				id := s.place(tea.ID, 1, 500)
				mu.Lock()
				ids = append(ids, id)
				mu.Unlock()
			}
		})
	}
	wg.Go(func() { // a manager edits the description, reading the product each time
		for i := range 10 {
			var p product.Product
			must(t, 200, "GET", s.api+"/products/"+string(tea.ID), "", "", &p)
			body := fmt.Sprintf(`{"name":%q,"description":"edit %d","category_id":%q,"price_cents":%d,
				"units_in_stock":%d,"expected_version":%d}`, p.Name, i, p.CategoryID, p.PriceCents, p.UnitsInStock, p.Version)
			switch status, b := call(t, "PUT", s.api+"/products/"+string(tea.ID), s.manager, body); status {
			case 200:
				edits.Add(1)
			case 409:
				conflicts.Add(1)
			default:
				t.Errorf("PUT: got %d %s, want 200 or 409", status, b)
			}
		}
	})
	wg.Wait()
	rs := s.waitAnswered(ids...)
	elapsed := time.Since(start)
	reserved := 0
	for _, r := range rs {
		if r.State == product.Reserved {
			reserved++
		}
	}
	if reserved != units {
		t.Errorf("got %d reserved, want %d", reserved, units)
	}
	if n := s.units(tea.ID); n != 0 {
		t.Errorf("got %d units left, want 0", n)
	}
	t.Logf("%d order.placed appended by 16 writers and answered in %s: %.0f answers/s; manager edits: %d saved, %d conflicts",
		orders, elapsed.Round(time.Millisecond), orders/elapsed.Seconds(), edits.Load(), conflicts.Load())
	s.checkStream(tea.ID)
	s.checkRebuild()
}

// TestSagaRestart stops the service while orders keep coming and starts it again: every
// order is answered once, nothing is reserved twice, and the read model equals a rebuild.
func TestSagaRestart(t *testing.T) {
	t.Parallel()
	s := startSagaShop(t)
	const units, orders = 30, 60
	tea := s.newProduct("Tea", 500, units)
	var ids []string
	placed := make(chan struct{})
	go func() {
		defer close(placed)
		for range orders {
			ids = append(ids, s.place(tea.ID, 1, 500))
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	s.stop() // mid-stream: orders keep coming while it is down
	time.Sleep(100 * time.Millisecond)
	s.start(t)
	<-placed
	rs := s.waitAnswered(ids...)
	reserved := 0
	for _, r := range rs {
		if r.State == product.Reserved {
			reserved++
		}
	}
	if reserved != units || len(rs) != orders {
		t.Errorf("got %d reserved of %d answers, want %d of %d", reserved, len(rs), units, orders)
	}
	if n := s.units(tea.ID); n != 0 {
		t.Errorf("got %d units left, want 0", n)
	}
	s.checkStream(tea.ID)
	s.checkRebuild()
}

// TestSagaCrashAndRejectionWhileDown: the service appended a reservation and died before
// recording it (the test appends the very event the service decides, with its id), and an
// order was placed and rejected while it was down. After the restart the reservation is
// stored once, and the rejected order is reserved and released.
func TestSagaCrashAndRejectionWhileDown(t *testing.T) {
	t.Parallel()
	s := startSagaShop(t)
	tea := s.newProduct("Tea", 500, 10)

	s.stop()
	crashed := s.place(tea.ID, 3, 500)
	decided, _ := product.ReserveStock(product.Stock{PriceCents: 500, UnitsInStock: 10, Version: tea.Version},
		product.Reservation{ProductID: tea.ID}, crashed, event.OrderLine{ProductID: string(tea.ID), Quantity: 3, UnitPriceCents: 500})
	expected := tea.Version
	reply, err := s.es.Append(context.Background(), event.AppendRequest{Stream: "product-" + string(tea.ID),
		ExpectedVersion: &expected, Events: []event.New{decided}})
	if err != nil || !reply.OK {
		t.Fatalf("append the decision: got %+v, %v, want ok", reply, err)
	}
	rejected := s.place(tea.ID, 2, 500)
	s.reject(rejected)
	s.start(t)

	s.waitState(rejected, product.Released)
	if r := s.waitAnswered(crashed)[crashed]; r.State != product.Reserved {
		t.Errorf("the order whose answer was stored before the crash: got %+v, want reserved", r)
	}
	if n := s.units(tea.ID); n != 7 {
		t.Errorf("got %d units, want 7", n)
	}
	s.checkStream(tea.ID)
	s.checkRebuild()
}

// TestSagaOrdersOfSeveralLines: each line of an order is reserved on its own product's
// stream; after a line that cannot be reserved the rest are not answered, and the
// order's rejection releases every line reserved, so nothing stays held.
func TestSagaOrdersOfSeveralLines(t *testing.T) {
	t.Parallel()
	s := startSagaShop(t)
	tea, mug, pot := s.newProduct("Tea", 500, 10), s.newProduct("Mug", 900, 2), s.newProduct("Pot", 3000, 5)

	whole := s.placeLines(line{tea.ID, 3, 500}, line{mug.ID, 1, 900}, line{pot.ID, 1, 3000})
	short := s.placeLines(line{tea.ID, 2, 500}, line{mug.ID, 5, 900}, line{pot.ID, 1, 3000})
	for _, want := range []struct {
		order   string
		product product.ProductID
		state   product.ReservationState
	}{{whole, pot.ID, product.Reserved}, {short, mug.ID, product.Rejected}} {
		testenv.Eventually(t, 30*time.Second, "the line is answered", func() bool {
			return s.lineState(want.order, want.product) == want.state
		})
	}
	for _, p := range []product.ProductID{tea.ID, mug.ID} {
		if got := s.lineState(whole, p); got != product.Reserved {
			t.Errorf("order of three lines in stock: line of %s is %q, want reserved", p, got)
		}
	}
	if got := s.lineState(short, tea.ID); got != product.Reserved {
		t.Errorf("the line before the one out of stock: %q, want reserved (until the order is rejected)", got)
	}
	if got := s.lineState(short, pot.ID); got != "" {
		t.Errorf("the line after the one out of stock: %q, want not answered", got)
	}

	s.reject(short)
	testenv.Eventually(t, 30*time.Second, "the rejected order's reserved line is released", func() bool {
		return s.lineState(short, tea.ID) == product.Released
	})
	for p, want := range map[product.ProductID]int64{tea.ID: 10 - 3, mug.ID: 2 - 1, pot.ID: 5 - 1} {
		if n := s.units(p); n != want {
			t.Errorf("product %s: %d units, want %d", p, n, want)
		}
	}
	for _, p := range []product.ProductID{tea.ID, mug.ID, pot.ID} {
		s.checkStream(p)
	}
	s.checkRebuild()
}
