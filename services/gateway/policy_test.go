package gateway_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/services/gateway"
)

// seen is what the recording upstream saw of one request.
type seen struct{ user, role, authorization, path string }

// newRecorder starts an upstream that answers 200 to everything and records each request
// it saw under its X-Request-Id.
func newRecorder(t *testing.T) (*httptest.Server, *sync.Map) {
	t.Helper()
	var requests sync.Map
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Store(r.Header.Get("X-Request-Id"), seen{r.Header.Get("X-Msdemo-User"),
			r.Header.Get("X-Msdemo-Role"), r.Header.Get("Authorization"), r.URL.Path})
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"upstream":true}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &requests
}

// TestPolicy sends requests of several callers through the gateway to an upstream that
// stands for every service, and checks who gets through.
func TestPolicy(t *testing.T) {
	t.Parallel()
	upstream, requests := newRecorder(t)
	static := map[string]string{}
	for _, s := range []string{"customer", "product", "order", "accounting", "eventstore"} {
		static[s] = upstream.URL
	}
	base := startGateway(t, gateway.Config{Static: static})

	otherKey, _ := auth.NewKey([]byte("another key of thirty-two bytes."))
	sign := func(key auth.Key, user string, role auth.Role, valid time.Duration) string {
		return "Bearer " + key.Sign(auth.Claims{User: user, Role: role, ExpiresAt: time.Now().Add(valid)})
	}
	// A caller is an Authorization header, extra headers, and the identity the upstream
	// should see ("" for anonymous).
	type caller struct {
		authorization string
		extra         http.Header
		user, role    string
	}
	forged := http.Header{"X-Msdemo-User": {"mia"}, "X-Msdemo-Role": {"manager"}, "X-User": {"mia"}}
	callers := map[string]caller{
		"anon":          {},
		"ann":           {authorization: sign(testKey, "ann", auth.Customer, time.Hour), user: "ann", role: "customer"},
		"bob":           {authorization: sign(testKey, "bob", auth.Customer, time.Hour), user: "bob", role: "customer"},
		"mia":           {authorization: sign(testKey, "mia", auth.Manager, time.Hour), user: "mia", role: "manager"},
		"expired":       {authorization: sign(testKey, "mia", auth.Manager, -time.Second)},
		"other key":     {authorization: sign(otherKey, "mia", auth.Manager, time.Hour)},
		"garbage":       {authorization: "Bearer abc.def"},
		"basic":         {authorization: "Basic bWlhOnB3"}, // not a bearer token: anonymous
		"forged":        {extra: forged},
		"ann as forged": {authorization: sign(testKey, "ann", auth.Customer, time.Hour), extra: forged, user: "ann", role: "customer"},
	}

	for _, tc := range []struct {
		method, path, caller string
		status               int
	}{
		{"POST", "/customer/users", "anon", 200},
		{"POST", "/customer/users", "expired", 401},
		{"POST", "/customer/users", "other key", 401},
		{"POST", "/customer/login", "anon", 200},
		{"POST", "/customer/login", "garbage", 401},
		{"GET", "/customer/users", "anon", 401},
		{"GET", "/customer/users", "forged", 401},
		{"GET", "/customer/users", "basic", 401},
		{"GET", "/customer/users", "ann", 403},
		{"GET", "/customer/users", "ann as forged", 403},
		{"GET", "/customer/users", "mia", 200},
		{"GET", "/customer/users", "expired", 401},
		{"GET", "/customer/users/ann", "anon", 401},
		{"GET", "/customer/users/ann", "ann", 200},
		{"GET", "/customer/users/ann", "ann as forged", 200},
		{"GET", "/customer/users/ann", "bob", 403},
		{"GET", "/customer/users/ann", "mia", 200},
		{"GET", "/customer/users/bob/../ann", "bob", 403}, // matched as normalized
		{"PUT", "/customer/users/ann", "ann", 200},
		{"PUT", "/customer/users/ann", "bob", 403},
		{"DELETE", "/customer/users/ann", "mia", 405},
		{"GET", "/customer/users/ann/credit", "ann", 200},
		{"GET", "/customer/users/ann/credit", "bob", 403},
		{"GET", "/customer/users/ann/credit", "mia", 200},
		{"PUT", "/customer/users/ann/credit", "ann", 403},
		{"PUT", "/customer/users/ann/credit", "mia", 200},
		{"GET", "/customer/users/ann/orders", "mia", 404},
		{"GET", "/customer/users/", "mia", 404},
		{"GET", "/customer/healthz", "anon", 404},

		{"GET", "/product/categories", "anon", 200},
		{"GET", "/product/categories", "basic", 200},
		{"GET", "/product/categories", "expired", 401},
		{"GET", "/product/categories/c1", "anon", 200},
		{"POST", "/product/categories", "anon", 401},
		{"POST", "/product/categories", "ann", 403},
		{"POST", "/product/categories", "mia", 200},
		{"PUT", "/product/categories/c1", "ann", 403},
		{"DELETE", "/product/categories/c1", "ann", 403},
		{"DELETE", "/product/categories/c1", "mia", 200},
		{"GET", "/product/products", "anon", 200},
		{"HEAD", "/product/products", "anon", 200},
		{"GET", "/product/products/p1", "ann", 200},
		{"POST", "/product/products", "ann", 403},
		{"PUT", "/product/products/p1", "mia", 200},
		{"DELETE", "/product/products/p1", "forged", 401},
		{"GET", "/product/../customer/users", "ann", 403}, // matched as normalized
		{"GET", "/product/healthz", "mia", 404},

		{"POST", "/order/orders", "anon", 401},
		{"POST", "/order/orders", "ann", 200},
		{"POST", "/order/orders", "mia", 403},
		{"GET", "/order/orders", "anon", 401},
		{"GET", "/order/orders", "bob", 200},
		{"GET", "/order/orders", "mia", 200},
		{"GET", "/order/orders/o1", "bob", 200}, // the order service checks the owner
		{"GET", "/order/orders/o1", "anon", 401},
		{"DELETE", "/order/orders/o1", "mia", 405},

		{"GET", "/accounting/invoices", "ann", 200},
		{"GET", "/accounting/invoices/o1", "ann", 200},
		{"GET", "/accounting/invoices/o1", "anon", 401},
		{"GET", "/accounting/revenue", "ann", 403},
		{"GET", "/accounting/revenue", "mia", 200},

		{"GET", "/eventstore/events", "anon", 401},
		{"GET", "/eventstore/events", "ann", 403},
		{"GET", "/eventstore/events", "mia", 200},
		{"GET", "/eventstore/streams/order-1", "mia", 200},
		{"GET", "/eventstore/streams/order-1", "bob", 403},
		{"GET", "/eventstore/healthz", "mia", 404},

		{"GET", "/order/dead-letters", "ann", 403},
		{"GET", "/order/dead-letters", "mia", 200},
		{"POST", "/customer/dead-letters/replay", "mia", 200},
		{"POST", "/product/dead-letters/m1/replay", "mia", 200},
		{"POST", "/product/dead-letters/m1/replay", "ann", 403},
		{"DELETE", "/accounting/dead-letters/m1", "mia", 200},
		{"DELETE", "/accounting/dead-letters/replay", "mia", 200}, // an id that is "replay"
		{"GET", "/order/dead-letters/replay", "mia", 405},
		{"GET", "/eventstore/dead-letters", "mia", 404},

		{"GET", "/registry", "anon", 401},
		{"GET", "/registry", "ann", 403},
		{"GET", "/registry", "mia", 200},
		{"GET", "/openapi.yaml", "anon", 200},
		{"GET", "/healthz", "anon", 200},
		{"GET", "/healthz", "expired", 401},
	} {
		c := callers[tc.caller]
		t.Run(fmt.Sprintf("%s %s as %s", tc.method, tc.path, tc.caller), func(t *testing.T) {
			id := fmt.Sprintf("policy-%d", time.Now().UnixNano())
			header := http.Header{"X-Request-Id": {id}}
			if c.authorization != "" {
				header.Set("Authorization", c.authorization)
			}
			for k, v := range c.extra {
				header[k] = v
			}
			status, h, body := do(t, tc.method, base+tc.path, header, "")
			if status != tc.status {
				t.Errorf("got status %d (%s), want %d", status, body, tc.status)
			}
			if status != 200 && h.Get("Content-Type") != "application/json" {
				t.Errorf("got Content-Type %q with status %d, want application/json", h.Get("Content-Type"), status)
			}
			got, forwarded := requests.Load(id)
			own := tc.path == "/registry" || tc.path == "/openapi.yaml" || tc.path == "/healthz"
			if want := tc.status == 200 && !own; forwarded != want {
				t.Fatalf("upstream saw the request: got %v, want %v", forwarded, want)
			}
			if !forwarded {
				return
			}
			s := got.(seen)
			if s.user != c.user || s.role != c.role {
				t.Errorf("upstream saw X-Msdemo-User %q, X-Msdemo-Role %q; want %q, %q", s.user, s.role, c.user, c.role)
			}
			if s.authorization != c.authorization {
				t.Errorf("upstream saw Authorization %q, want %q unchanged", s.authorization, c.authorization)
			}
			if _, rest, _ := strings.Cut(tc.path[1:], "/"); !strings.Contains(tc.path, "..") && s.path != "/"+rest {
				t.Errorf("upstream saw path %q, want %q", s.path, "/"+rest)
			}
		})
	}
}
