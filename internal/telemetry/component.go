package telemetry

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	chimw "github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// Component records the series of one component (component="<name>"). Its methods are
// safe for concurrent use, and do nothing on a nil *Component.
type Component struct {
	name string
	m    *Metrics

	httpRequests *prometheus.CounterVec // curried with component
	httpDuration prometheus.ObserverVec // curried with component
	busConsumed  *prometheus.CounterVec // curried with component
	busDead      *prometheus.CounterVec // curried with component
	routes       sync.Map               // routeCode → *httpSeries
	queues       sync.Map               // queue → prometheus.Counter (consumed)
}

// Name is the component's name, its component label.
func (c *Component) Name() string {
	if c == nil {
		return ""
	}
	return c.name
}

type routeCode struct {
	route string
	code  int
}

type httpSeries struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// ObserveHTTP records one answered request: msdemo_http_requests_total{route,code} and
// msdemo_http_request_duration_seconds{route}. route must come from a bounded set (a
// route pattern, never a raw path); "" counts as UnmatchedRoute. It allocates only the
// first time a route and code are seen.
func (c *Component) ObserveHTTP(route string, code int, d time.Duration) {
	if c == nil {
		return
	}
	if route == "" {
		route = UnmatchedRoute
	}
	key := routeCode{route, code}
	s, ok := c.routes.Load(key)
	if !ok {
		s, _ = c.routes.LoadOrStore(key, &httpSeries{
			requests: c.httpRequests.WithLabelValues(route, strconv.Itoa(code)),
			duration: c.httpDuration.WithLabelValues(route)})
	}
	hs := s.(*httpSeries)
	hs.requests.Inc()
	hs.duration.Observe(d.Seconds())
}

// request is what HTTP keeps in a request's context: the component, and the route
// pattern a ServeMux found (Routes).
type request struct {
	c     *Component
	route string
}

type requestKey struct{}

// HTTP wraps a net/http handler and records every request with ObserveHTTP under the
// pattern of the route that served it: a chi route's (e.g. "/products/{id}"; to know it
// after the router returns, HTTP hands the router a chi route context of its own), else
// (or when chi's is a catch-all "/*") the one a ServeMux wrapped in Routes found, else
// UnmatchedRoute. The request's context
// carries c (SSEClient reads it). A nil c returns next.
func (c *Component) HTTP(next http.Handler) http.Handler {
	if c == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := r.Context()
		rctx := chi.RouteContext(ctx)
		if rctx == nil {
			rctx = chi.NewRouteContext()
			ctx = context.WithValue(ctx, chi.RouteCtxKey, rctx)
		}
		req := &request{c: c}
		r = r.WithContext(context.WithValue(ctx, requestKey{}, req))
		ww := chimw.NewWrapResponseWriter(w, r.ProtoMajor)
		defer func() { // deferred, so that an aborted response (a panic) counts too
			code := ww.Status()
			if code == 0 {
				code = http.StatusOK // nothing written: net/http answers 200
			}
			c.ObserveHTTP(routeOf(rctx, req), code, time.Since(start))
		}()
		next.ServeHTTP(ww, r)
	})
}

// routeOf is the pattern of the route that served a request: chi's, unless a ServeMux
// behind chi's catch-all (or without chi) knew better; "" for none.
func routeOf(rctx *chi.Context, req *request) string {
	route := rctx.RoutePattern()
	if req.route != "" && (route == "" || strings.HasSuffix(route, "*")) {
		route = req.route
	}
	return route
}

// Routes returns mux as a handler that tells HTTP the pattern of the route mux serves a
// request with, without its method ("GET /products/{id}" counts as "/products/{id}"). A
// chi router that mux hands the request to names a more precise one. Outside HTTP it is
// mux, at the cost of a type assertion.
func Routes(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if req, ok := r.Context().Value(requestKey{}).(*request); ok {
			_, pattern := mux.Handler(r)
			if _, path, found := strings.Cut(pattern, " "); found {
				pattern = path
			}
			req.route = pattern
		}
		mux.ServeHTTP(w, r)
	})
}

// SSEClient counts a browser connected to a live view in msdemo_sse_clients of the
// component whose HTTP handler serves ctx's request, and returns the function that
// counts it gone (call it when the stream ends). Outside such a request it counts nothing.
func SSEClient(ctx context.Context) (gone func()) {
	req, _ := ctx.Value(requestKey{}).(*request)
	if req == nil || req.c == nil { // outside HTTP, or only traced (TraceHTTP)
		return func() {}
	}
	c := req.c
	g := c.m.sseClients.WithLabelValues(c.name)
	g.Inc()
	return g.Dec
}

// ServesSSE makes the component's msdemo_sse_clients show (at 0) before a browser
// connects; the sites call it when they start.
func (c *Component) ServesSSE() {
	if c != nil {
		c.m.sseClients.WithLabelValues(c.name)
	}
}

// The bus reports to these (they make *Component a bus.Observer).

// Published counts n messages the broker confirmed (msdemo_bus_published_total).
func (c *Component) Published(n int) {
	if c != nil {
		c.m.busPublished.WithLabelValues(c.name).Add(float64(n))
	}
}

// Consumed counts a delivery from queue handled successfully (msdemo_bus_consumed_total).
func (c *Component) Consumed(queue string) {
	if c == nil {
		return
	}
	q, ok := c.queues.Load(queue)
	if !ok {
		q, _ = c.queues.LoadOrStore(queue, c.busConsumed.WithLabelValues(queue))
	}
	q.(prometheus.Counter).Inc()
}

// DeadLettered counts a delivery from queue rejected after failing
// (msdemo_bus_dead_lettered_total).
func (c *Component) DeadLettered(queue string) {
	if c != nil {
		c.busDead.WithLabelValues(queue).Inc()
	}
}

// Consuming makes the queue's msdemo_bus_consumed_total and
// msdemo_bus_dead_lettered_total show (at 0) once a consumer starts.
func (c *Component) Consuming(queue string) {
	if c != nil {
		c.busConsumed.WithLabelValues(queue)
		c.busDead.WithLabelValues(queue)
	}
}

// Reconnected counts a reconnection to the broker (msdemo_bus_reconnects_total).
func (c *Component) Reconnected() {
	if c != nil {
		c.m.busReconnects.WithLabelValues(c.name).Inc()
	}
}

// Connected makes the component's bus counters (published, reconnects) show (at 0); the
// bus calls it when it first connects.
func (c *Component) Connected() {
	if c != nil {
		c.m.busPublished.WithLabelValues(c.name)
		c.m.busReconnects.WithLabelValues(c.name)
	}
}

// Subscription sets the read model's subscription gauges: position is its checkpoint
// (msdemo_subscription_position), lag the positions between the store's head and how far
// it has applied every event it follows (msdemo_subscription_lag_events).
func (c *Component) Subscription(position, lag int64) {
	if c != nil {
		c.m.subPosition.WithLabelValues(c.name).Set(float64(position))
		c.m.subLag.WithLabelValues(c.name).Set(float64(max(lag, 0)))
	}
}

// StoreOpened sets the event store's head position and makes its families show; the
// event store calls it once its writer knows the head.
func (c *Component) StoreOpened(head int64) {
	if c != nil {
		c.m.storeHead.WithLabelValues(c.name).Set(float64(head))
		c.m.storeAppended.WithLabelValues(c.name)
		c.m.storeCommit.WithLabelValues(c.name)
		c.m.storeBatch.WithLabelValues(c.name)
	}
}

// Committed records one commit of the event store's writer: requests append requests
// with events new events in it, written in d, the head now at head.
func (c *Component) Committed(requests, events int, head int64, d time.Duration) {
	if c != nil {
		c.m.storeAppended.WithLabelValues(c.name).Add(float64(events))
		c.m.storeHead.WithLabelValues(c.name).Set(float64(head))
		c.m.storeCommit.WithLabelValues(c.name).Observe(d.Seconds())
		c.m.storeBatch.WithLabelValues(c.name).Observe(float64(requests))
	}
}

// DecidesOrders makes msdemo_orders_total of every outcome and msdemo_saga_duration_seconds
// show (at 0); the order service calls it when it starts.
func (c *Component) DecidesOrders() {
	if c != nil {
		for _, o := range []string{OutcomeApproved, OutcomeRejected, OutcomeTimedOut} {
			c.m.orders.WithLabelValues(c.name, o)
		}
		c.m.sagaDuration.WithLabelValues(c.name)
	}
}

// OrderDecided counts an order decided with outcome (OutcomeApproved, OutcomeRejected,
// OutcomeTimedOut) and records the saga's duration, from placedAt to now.
func (c *Component) OrderDecided(outcome string, placedAt time.Time) {
	if c != nil {
		c.m.orders.WithLabelValues(c.name, outcome).Inc()
		c.m.sagaDuration.WithLabelValues(c.name).Observe(max(time.Since(placedAt).Seconds(), 0))
	}
}
