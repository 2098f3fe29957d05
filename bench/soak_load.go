package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/registry"
)

// The soak's shop: few products with little stock and customers with little credit, so
// that orders contend and many are rejected (what oversell and overspend would break).
const (
	soakProducts     = 6
	soakStartStock   = 40
	soakStartCredit  = 5000 // cents: a handful of orders
	soakSagaTimeout  = 20 * time.Second
	soakRequestLimit = 30 * time.Second // per request; an order's wait asks for 20 s
)

// Statuses the soak counts as failures. It sends only valid requests, so the shop has no
// reason to refuse one (400, 403, 413, 415, 422) or to rate-limit it (429: the soak runs
// with the limits off), and 500 is a bug by definition. 502, 503 and 504 are the shop's
// honest "not now" while a component is down (the gateway's upstream died mid-request, no
// instance is announced, a service is catching up, the event store is unreachable): they
// are counted, not failures, as are connection errors (status 0, the gateway killed).
// 401 (a login before the registration reached the read model), 404 (an order read
// before the order's read model has it) and 409 (a stale expected_version) are expected.
func failureStatus(code int) bool {
	switch code {
	case http.StatusBadRequest, http.StatusForbidden, http.StatusRequestEntityTooLarge,
		http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity, http.StatusTooManyRequests:
		return true
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return false
	}
	return code >= 500
}

// ack is a write the shop acknowledged with a 2xx: the event it must have stored, at
// Version of Stream (0: any version), with Fields among its data.
type ack struct {
	What    string
	Stream  string
	Type    string
	Version int64
	Fields  map[string]any
}

// soakLoad is the soak's clients: what they did, what the shop answered, and what it
// acknowledged.
type soakLoad struct {
	shop    *soakShop
	http    *http.Client
	gw      string // gateway base URL
	seq     atomic.Int64
	run     string // names the run's customers
	admin   string // the managers' token
	prods   []string
	mu      sync.Mutex
	status  map[int]int    // answers by status (0: no answer)
	bad     map[string]int // failing answers by "status method route"
	samples notes          // bodies of failing answers
	acks    []ack
	placed  []string // ids of the orders that got 202
	users   []string // registered customers (201)
	ops     map[string]int
	sse     struct{ followed, fallback int }
}

func newSoakLoad(s *soakShop) *soakLoad {
	return &soakLoad{shop: s, gw: "http://" + s.addr[registry.Gateway], run: randomHex(2),
		http:   &http.Client{Timeout: soakRequestLimit, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		status: map[int]int{}, bad: map[string]int{}, ops: map[string]int{}}
}

// call sends a JSON request (in nil: no body) to url and decodes a 2xx answer into out
// (nil: ignore); it counts the status and returns it, 0 without an answer.
func (l *soakLoad) call(ctx context.Context, method, url, token string, header http.Header, in, out any) int {
	req, err := jsonRequest(ctx, method, url, token, header, in)
	if err != nil {
		panic(err) // the soak's own URLs
	}
	resp, err := l.http.Do(req)
	code := 0
	var raw []byte
	if err == nil {
		raw, _ = io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		code = resp.StatusCode
	}
	if ctx.Err() != nil && code == 0 {
		return 0 // the soak ended the request: not the shop's answer
	}
	l.count(code, method, url, raw)
	if out != nil && code/100 == 2 {
		if err := json.Unmarshal(raw, out); err != nil {
			l.samples.add(fmt.Sprintf("%s %s: %d with a body that does not decode: %v", method, url, code, err))
			return 0
		}
	}
	return code
}

// idSegment matches the ids in a path, which the failing answers are grouped without.
var idSegment = regexp.MustCompile(`/[0-9a-z]{10}$|/[0-9a-z]{10}/|/soak[0-9a-z-]+`)

func (l *soakLoad) count(code int, method, rawURL string, body []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.status[code]++
	if failureStatus(code) {
		route := rawURL
		if u, err := url.Parse(rawURL); err == nil {
			site := "gateway"
			for name, addr := range l.shop.addr {
				if addr == u.Host {
					site = name
				}
			}
			route = site + " " + idSegment.ReplaceAllString(u.Path, "/{id}/")
		}
		l.bad[fmt.Sprintf("%d %s %s", code, method, route)]++
		l.samples.add(fmt.Sprintf("%d %s %s: %s", code, method, rawURL, tail(string(body), 300)))
	}
}

func (l *soakLoad) api(ctx context.Context, method, path, token string, in, out any) int {
	return l.call(ctx, method, l.gw+path, token, nil, in, out)
}

func (l *soakLoad) acked(a ack) {
	l.mu.Lock()
	l.acks = append(l.acks, a)
	l.mu.Unlock()
}

func (l *soakLoad) did(op string) {
	l.mu.Lock()
	l.ops[op]++
	l.mu.Unlock()
}

// retry calls try every 200 ms until it reports done, or ctx ends.
func retry(ctx context.Context, try func() bool) bool {
	for {
		if try() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// setUp logs the managers in and adds the catalog, retrying through any fault.
func (l *soakLoad) setUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if !retry(ctx, func() bool {
		var t struct{ Token string }
		st := l.api(ctx, http.MethodPost, "/customer/login", "", map[string]string{"username": "admin", "password": adminPassword}, &t)
		l.admin = t.Token
		return st == http.StatusOK
	}) {
		return fmt.Errorf("log in as admin: %w", ctx.Err())
	}
	var cat struct{ ID string }
	if !retry(ctx, func() bool {
		return l.api(ctx, http.MethodPost, "/product/categories", l.admin, map[string]string{"name": "Soak"}, &cat) == http.StatusCreated
	}) {
		return fmt.Errorf("add the category: %w", ctx.Err())
	}
	for i := range soakProducts {
		var p struct{ ID string }
		if !retry(ctx, func() bool {
			return l.api(ctx, http.MethodPost, "/product/products", l.admin, map[string]any{
				"name": fmt.Sprintf("Soak item %d", i), "description": "A product of the chaos soak.",
				"supplier": "Soak & Co", "category_id": cat.ID, "price_cents": 100 + 100*i, "units_in_stock": soakStartStock}, &p) == http.StatusCreated
		}) {
			return fmt.Errorf("add a product: %w", ctx.Err())
		}
		l.prods = append(l.prods, p.ID)
		l.acked(ack{What: "product added", Stream: event.Product.Stream(p.ID), Type: event.ProductAdded, Version: 1})
	}
	return nil
}

// soakCustomer is one customer of the load: a worker that registers, logs in and then
// browses, orders, follows its orders and edits its profile until ctx ends; every so
// often it leaves and a new customer takes its place.
type soakCustomer struct {
	l     *soakLoad
	rng   *rand.Rand
	name  string
	token string
	site  *http.Client // the storefront, with the customer's session cookie
}

func (l *soakLoad) customer(ctx context.Context, seed uint64) {
	c := &soakCustomer{l: l, rng: rand.New(rand.NewPCG(seed, 1))}
	for ctx.Err() == nil {
		if !c.register(ctx) {
			return
		}
		for n := 20 + c.rng.IntN(40); n > 0 && ctx.Err() == nil; n-- {
			switch r := c.rng.IntN(100); {
			case r < 35:
				c.browse(ctx)
			case r < 75:
				c.order(ctx)
			case r < 90:
				c.editProfile(ctx)
			default:
				c.readAccount(ctx)
			}
		}
	}
}

// register registers a new customer and logs it in; a retry that gets 409 means an
// earlier attempt was stored without its answer reaching the client.
func (c *soakCustomer) register(ctx context.Context) bool {
	l := c.l
	c.name = fmt.Sprintf("soak%s-%d", l.run, l.seq.Add(1))
	c.site = nil
	ok := retry(ctx, func() bool {
		switch l.api(ctx, http.MethodPost, "/customer/users", "", map[string]string{"username": c.name,
			"full_name": "Soak Customer", "email": c.name + "@example.com", "password": customerPassword}, nil) {
		case http.StatusCreated:
			l.acked(ack{What: "registration", Stream: event.Customer.Stream(c.name), Type: event.CustomerRegistered, Version: 1,
				Fields: map[string]any{"username": c.name}})
			return true
		case http.StatusConflict:
			return true
		}
		return false
	})
	if !ok {
		return false
	}
	l.mu.Lock()
	l.users = append(l.users, c.name)
	l.mu.Unlock()
	l.did("register")
	return retry(ctx, func() bool {
		var t struct{ Token string }
		st := l.api(ctx, http.MethodPost, "/customer/login", "", map[string]string{"username": c.name, "password": customerPassword}, &t)
		c.token = t.Token
		return st == http.StatusOK
	})
}

// browse reads the catalog through the API and, now and then, the storefront's pages.
func (c *soakCustomer) browse(ctx context.Context) {
	l := c.l
	l.api(ctx, http.MethodGet, "/product/categories", "", nil, nil)
	l.api(ctx, http.MethodGet, "/product/products?limit=20", "", nil, nil)
	p := l.prods[c.rng.IntN(len(l.prods))]
	l.api(ctx, http.MethodGet, "/product/products/"+p, "", nil, nil)
	if c.rng.IntN(3) == 0 {
		site := "http://" + l.shop.addr[registry.Storefront]
		l.call(ctx, http.MethodGet, site+"/", "", nil, nil, nil)
		l.call(ctx, http.MethodGet, site+"/products/"+p, "", nil, nil, nil)
	}
	l.did("browse")
}

// decisionMessage matches an SSE message of the storefront's order list that shows an
// order decided; its first group is the order's id.
var decisionMessage = regexp.MustCompile(`(?s)^event: order-([0-9a-zA-Z-]+)\n.*status-(?:approved|rejected)`)

// order places an order and follows it to its decision: half the time live, on the
// storefront's SSE stream of the customer's orders (opened before the order is placed),
// else by asking the API to answer once it is decided (Prefer: wait).
func (c *soakCustomer) order(ctx context.Context) {
	l := c.l
	var decided <-chan string
	if c.rng.IntN(2) == 0 {
		sctx, stop := context.WithCancel(ctx)
		defer stop()
		decided = c.followOrders(sctx)
	}
	var lines []map[string]any // 1 to 3 lines, of products that may repeat (the service merges them)
	for range 1 + c.rng.IntN(3) {
		lines = append(lines, map[string]any{"product_id": l.prods[c.rng.IntN(len(l.prods))], "quantity": 1 + c.rng.IntN(3)})
	}
	var o orderView
	st := l.api(ctx, http.MethodPost, "/order/orders", c.token, map[string]any{"lines": lines}, &o)
	if st != http.StatusAccepted {
		return
	}
	l.mu.Lock()
	l.placed = append(l.placed, o.ID)
	l.mu.Unlock()
	l.acked(ack{What: "order", Stream: event.Order.Stream(o.ID), Type: event.OrderPlaced, Version: 1})
	l.did("order")
	if decided != nil && c.awaitLive(ctx, decided, o.ID) {
		l.mu.Lock()
		l.sse.followed++
		l.mu.Unlock()
		return
	}
	if decided != nil {
		l.mu.Lock()
		l.sse.fallback++
		l.mu.Unlock()
	}
	wctx, cancel := context.WithTimeout(ctx, soakSagaTimeout+20*time.Second)
	defer cancel()
	retry(wctx, func() bool {
		var got orderView
		return l.call(wctx, http.MethodGet, l.gw+"/order/orders/"+o.ID, c.token, decisionWait, nil, &got) == http.StatusOK && got.decided()
	})
}

// awaitLive reports whether the stream decided showed order id decided before it ended,
// within the saga timeout and a margin.
func (c *soakCustomer) awaitLive(ctx context.Context, decided <-chan string, id string) bool {
	timeout := time.After(soakSagaTimeout + 10*time.Second)
	for {
		select {
		case got, ok := <-decided:
			if !ok {
				return false // the stream ended (the storefront or the gateway died)
			}
			if got == id {
				return true
			}
		case <-timeout:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// followOrders opens the storefront's live stream of the customer's orders (logging in to
// the storefront first if need be) and sends the id of each order it shows decided; the
// channel is closed when the stream ends or could not be opened.
func (c *soakCustomer) followOrders(ctx context.Context) <-chan string {
	l := c.l
	ch := make(chan string, 16)
	site := "http://" + l.shop.addr[registry.Storefront]
	if c.site == nil {
		jar, _ := cookiejar.New(nil)
		c.site = &http.Client{Jar: jar, Timeout: soakRequestLimit}
	}
	open := func() (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, site+"/events", nil)
		stream := &http.Client{Jar: c.site.Jar} // no timeout: ended with ctx
		return stream.Do(req)
	}
	resp, err := open()
	if err == nil && !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		// Not logged in to the storefront (first time, or its session was lost): log in.
		resp.Body.Close()
		lr, lerr := c.site.PostForm(site+"/login", url.Values{"username": {c.name}, "password": {customerPassword}, "next": {"/"}})
		if lerr == nil {
			_, _ = io.Copy(io.Discard, lr.Body)
			lr.Body.Close()
			l.count(lr.StatusCode, http.MethodPost, site+"/login", nil)
		}
		resp, err = open()
	}
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		if err == nil {
			l.count(resp.StatusCode, http.MethodGet, site+"/events", nil)
			resp.Body.Close()
		}
		close(ch)
		return ch
	}
	connected := make(chan struct{})
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		readSSE(resp.Body, func() { close(connected) }, func(msg string) {
			if m := decisionMessage.FindStringSubmatch(msg); m != nil {
				select {
				case ch <- m[1]:
				default:
				}
			}
		})
	}()
	select { // the subscription is live once the site said so: only then place the order
	case <-connected:
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
	}
	return ch
}

// editProfile changes the customer's full name, with the version it read.
func (c *soakCustomer) editProfile(ctx context.Context) {
	l := c.l
	var p struct {
		Email   string `json:"email"`
		Version int64  `json:"version"`
	}
	if l.api(ctx, http.MethodGet, "/customer/users/"+c.name, c.token, nil, &p) != http.StatusOK {
		return
	}
	name := fmt.Sprintf("Soak Customer %d", c.rng.IntN(1_000_000))
	var got struct {
		Version int64 `json:"version"`
	}
	if l.api(ctx, http.MethodPut, "/customer/users/"+c.name, c.token, map[string]any{
		"full_name": name, "email": p.Email, "expected_version": p.Version}, &got) == http.StatusOK {
		l.acked(ack{What: "profile edit", Stream: event.Customer.Stream(c.name), Type: event.CustomerProfileUpdated,
			Version: got.Version, Fields: map[string]any{"full_name": name}})
		l.did("profile edit")
	}
}

// readAccount reads the customer's credit and invoices.
func (c *soakCustomer) readAccount(ctx context.Context) {
	c.l.api(ctx, http.MethodGet, "/customer/users/"+c.name+"/credit", c.token, nil, nil)
	c.l.api(ctx, http.MethodGet, "/accounting/invoices?limit=5", c.token, nil, nil)
	c.l.did("account read")
}

// manager edits prices, stock and credit with the versions it read (a 409 when another
// manager or the saga was faster is expected), until ctx ends.
func (l *soakLoad) manager(ctx context.Context, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 2))
	var admin *http.Client // the managers' site, with this manager's session
	for ctx.Err() == nil {
		switch r := rng.IntN(100); {
		case r < 35:
			l.editProduct(ctx, rng, false)
		case r < 70:
			l.editProduct(ctx, rng, true)
		case r < 95:
			l.editCredit(ctx, rng)
		default:
			l.api(ctx, http.MethodGet, "/order/orders?limit=50", l.admin, nil, nil)
			l.api(ctx, http.MethodGet, "/accounting/revenue", l.admin, nil, nil)
			admin = l.adminPages(ctx, admin, rng)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(100+rng.IntN(400)) * time.Millisecond):
		}
	}
}

// adminPages reads a page of the managers' site with the session of client (logging in
// first when client is nil or its session was lost) and returns the client.
func (l *soakLoad) adminPages(ctx context.Context, client *http.Client, rng *rand.Rand) *http.Client {
	site := "http://" + l.shop.addr[registry.Admin]
	if client == nil {
		jar, _ := cookiejar.New(nil)
		client = &http.Client{Jar: jar, Timeout: soakRequestLimit}
	}
	page := []string{"/", "/orders", "/products", "/customers", "/eventstore"}[rng.IntN(5)]
	for try := 0; try < 2; try++ {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, site+page, nil)
		resp, err := client.Do(req)
		if err != nil {
			if ctx.Err() == nil {
				l.count(0, http.MethodGet, site+page, nil)
			}
			return client
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.Request.URL.Path != "/login" { // not sent to log in
			l.count(resp.StatusCode, http.MethodGet, site+page, nil)
			return client
		}
		lr, err := client.PostForm(site+"/login", url.Values{"username": {"admin"}, "password": {adminPassword}, "next": {page}})
		if err != nil {
			return client
		}
		_, _ = io.Copy(io.Discard, lr.Body)
		lr.Body.Close()
	}
	return client
}

// editProduct sets a product's price, or its stock (restocking it), with the version read.
func (l *soakLoad) editProduct(ctx context.Context, rng *rand.Rand, stock bool) {
	id := l.prods[rng.IntN(len(l.prods))]
	var p map[string]any
	if l.api(ctx, http.MethodGet, "/product/products/"+id, "", nil, &p) != http.StatusOK {
		return
	}
	op := "price edit"
	if stock {
		op = "stock edit"
		p["units_in_stock"] = float64(rng.IntN(2 * soakStartStock)) // may be below the reserved
	} else {
		p["price_cents"] = float64(100 + rng.IntN(900))
	}
	p["expected_version"] = p["version"]
	delete(p, "version")
	delete(p, "id")
	var got struct {
		Version      int64 `json:"version"`
		PriceCents   int64 `json:"price_cents"`
		UnitsInStock int64 `json:"units_in_stock"`
	}
	if l.api(ctx, http.MethodPut, "/product/products/"+id, l.admin, p, &got) == http.StatusOK {
		l.acked(ack{What: op, Stream: event.Product.Stream(id), Type: event.ProductUpdated, Version: got.Version,
			Fields: map[string]any{"price_cents": p["price_cents"], "units_in_stock": p["units_in_stock"]}})
		l.did(op)
	}
}

// editCredit adds credit to a random customer, with the version read.
func (l *soakLoad) editCredit(ctx context.Context, rng *rand.Rand) {
	l.mu.Lock()
	if len(l.users) == 0 {
		l.mu.Unlock()
		return
	}
	user := l.users[rng.IntN(len(l.users))]
	l.mu.Unlock()
	var c struct {
		CreditCents int64 `json:"credit_cents"`
		Version     int64 `json:"version"`
	}
	if l.api(ctx, http.MethodGet, "/customer/users/"+user+"/credit", l.admin, nil, &c) != http.StatusOK {
		return
	}
	credit := c.CreditCents + int64(500+rng.IntN(3000))
	var got struct {
		Version int64 `json:"version"`
	}
	if l.api(ctx, http.MethodPut, "/customer/users/"+user+"/credit", l.admin, map[string]any{
		"credit_cents": credit, "expected_version": c.Version}, &got) == http.StatusOK {
		l.acked(ack{What: "credit edit", Stream: event.Customer.Stream(user), Type: event.CustomerCreditSet,
			Version: got.Version, Fields: map[string]any{"credit_cents": float64(credit)}})
		l.did("credit edit")
	}
}
