package gateway

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/msdemo/msdemo/internal/httplimit"
	"github.com/msdemo/msdemo/internal/registry"
)

// policy is every route of the public API and who may call it: the REST table of
// DESIGN.md. A request whose method and path are not here gets 404 (or 405 when only the
// method differs) and never reaches a service; that includes each service's /healthz. The
// document served at GET /openapi.yaml lists the same routes (openapi_test.go checks it).
//
// A pattern is matched segment by segment on the normalized path; "{name}" matches any one
// non-empty segment. A pattern's first segment is a service of registry.Upstreams, or the
// gateway's own route. A HEAD request is matched as GET. Ownership that the path does not
// show (an order's customer, an invoice's) is checked by the service, which sees the token
// too.
var policy = slices.Concat([]route{
	{"POST", "/customer/users", anyone},
	{"POST", "/customer/login", anyone},
	{"GET", "/customer/users", manager},
	{"GET", "/customer/users/{username}", selfOrManager("username")},
	{"PUT", "/customer/users/{username}", selfOrManager("username")},
	{"GET", "/customer/users/{username}/credit", selfOrManager("username")},
	{"PUT", "/customer/users/{username}/credit", manager},

	{"GET", "/product/categories", anyone},
	{"GET", "/product/categories/{id}", anyone},
	{"POST", "/product/categories", manager},
	{"PUT", "/product/categories/{id}", manager},
	{"DELETE", "/product/categories/{id}", manager},
	{"GET", "/product/products", anyone},
	{"GET", "/product/products/{id}", anyone},
	{"POST", "/product/products", manager},
	{"PUT", "/product/products/{id}", manager},
	{"DELETE", "/product/products/{id}", manager},
	{"PUT", "/product/products/{id}/image", manager}, // a body up to largeBodies'
	{"GET", "/product/images/{id}", anyone},
	{"GET", "/product/search", anyone},

	{"POST", "/order/orders", customer},
	{"GET", "/order/orders", loggedIn},      // a customer sees their own
	{"GET", "/order/orders/{id}", loggedIn}, // the service checks the owner
	{"GET", "/order/cart", customer},        // the caller's own
	{"POST", "/order/cart/lines", customer},
	{"PUT", "/order/cart/lines/{product_id}", customer},
	{"DELETE", "/order/cart/lines/{product_id}", customer},
	{"POST", "/order/cart/checkout", customer},

	{"GET", "/accounting/invoices", loggedIn},            // a customer sees their own
	{"GET", "/accounting/invoices/{order_id}", loggedIn}, // the service checks the owner
	{"GET", "/accounting/revenue", manager},

	{"GET", "/eventstore/events", manager},
	{"GET", "/eventstore/streams/{stream}", manager},
}, deadLetterRoutes(registry.Subscribers()), []route{
	// The gateway's own.
	{"GET", "/healthz", anyone},
	{"GET", "/registry", manager},
	{"GET", "/openapi.yaml", anyone},
})

// largeBodies are the routes of policy ("METHOD pattern") whose request bodies may be
// larger than Limits.MaxBodyBytes, with their limit: an image upload. Only a caller the
// route lets in may send that much (server.bodyLimit).
var largeBodies = map[string]int64{"PUT /product/products/{id}/image": httplimit.MaxUploadBodyBytes}

// deadLetterRoutes are the managers' routes to the dead letters of each service's event
// queue, which the admin site lists, replays and discards.
func deadLetterRoutes(services []string) []route {
	var routes []route
	for _, s := range services {
		routes = append(routes,
			route{"GET", "/" + s + "/dead-letters", manager},
			route{"POST", "/" + s + "/dead-letters/replay", manager},
			route{"POST", "/" + s + "/dead-letters/{id}/replay", manager},
			route{"DELETE", "/" + s + "/dead-letters/{id}", manager})
	}
	return routes
}

// route is one line of the policy.
type route struct {
	method  string
	pattern string
	access  access
}

// access says who may call a route.
type access struct {
	who   who
	param string // whoSelfOrManager: the path parameter that must be the caller's username
}

type who int

const (
	whoAnyone        who = iota // no token needed
	whoLoggedIn                 // any valid token: a customer or a manager
	whoCustomer                 // a customer's token (managers do not place orders)
	whoManager                  // a manager's token
	whoSelfOrManager            // the user the path names, or a manager
)

// The access levels of the policy.
var (
	anyone   = access{who: whoAnyone}
	loggedIn = access{who: whoLoggedIn}
	customer = access{who: whoCustomer}
	manager  = access{who: whoManager}
)

// selfOrManager lets through the user named by the path parameter param, and managers.
func selfOrManager(param string) access { return access{who: whoSelfOrManager, param: param} }

// maxSegments is the most path segments a route has; longer paths match nothing.
const maxSegments = 8

// compiledRoute is a route split into segments for matching.
type compiledRoute struct {
	route
	service string   // the first segment: the upstream, or the gateway's own route
	segs    []string // the pattern's segments; "" stands for a parameter
	self    int      // for whoSelfOrManager, the index of the segment naming the user
	maxBody int64    // the route's body limit from largeBodies; 0: the server's
}

// router matches requests against the policy. Routes are grouped by their first segment,
// and a match compares segments as byte slices: no regular expression and no allocation.
// It is built once and only read afterwards, so it is safe for concurrent use.
type router struct {
	byFirst map[string][]*compiledRoute
}

// newRouter compiles routes. It panics on a malformed or ambiguous table, a programming
// mistake that every test run catches.
func newRouter(routes []route) *router {
	rt := &router{byFirst: make(map[string][]*compiledRoute)}
	for _, r := range routes {
		c := &compiledRoute{route: r, self: -1, maxBody: largeBodies[r.method+" "+r.pattern]}
		parts := strings.Split(strings.TrimPrefix(r.pattern, "/"), "/")
		if !strings.HasPrefix(r.pattern, "/") || len(parts) > maxSegments || strings.HasPrefix(parts[0], "{") {
			panic(fmt.Sprintf("gateway: bad pattern %q", r.pattern))
		}
		for i, p := range parts {
			switch {
			case p == "":
				panic(fmt.Sprintf("gateway: empty segment in pattern %q", r.pattern))
			case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}"):
				if p[1:len(p)-1] == r.access.param {
					c.self = i
				}
				p = ""
			}
			c.segs = append(c.segs, p)
		}
		if r.access.who == whoSelfOrManager && c.self < 0 {
			panic(fmt.Sprintf("gateway: pattern %q has no parameter {%s}", r.pattern, r.access.param))
		}
		c.service = parts[0]
		for _, other := range rt.byFirst[c.service] {
			if other.method == c.method && overlap(other.segs, c.segs) {
				panic(fmt.Sprintf("gateway: %s %s and %s overlap", c.method, other.pattern, c.pattern))
			}
		}
		rt.byFirst[c.service] = append(rt.byFirst[c.service], c)
	}
	return rt
}

// overlap reports whether some path matches both segment lists.
func overlap(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != "" && b[i] != "" && a[i] != b[i] {
			return false
		}
	}
	return true
}

// splitPath appends the segments of path (which starts with "/") to segs, and reports
// false if there are more than cap(segs). "/" is one empty segment; a trailing slash
// makes an empty last segment, which no route matches.
func splitPath(path []byte, segs [][]byte) ([][]byte, bool) {
	for len(path) > 0 {
		path = path[1:]
		i := bytes.IndexByte(path, '/')
		if i < 0 {
			i = len(path)
		}
		if len(segs) == cap(segs) {
			return segs, false
		}
		segs = append(segs, path[:i])
		path = path[i:]
	}
	return segs, true
}

// match returns the route for method and the path segments segs, or nil. When no route
// matches but some route has the path with another method, pathKnown is true.
func (rt *router) match(method []byte, segs [][]byte) (r *compiledRoute, pathKnown bool) {
	if string(method) == "HEAD" {
		method = []byte("GET")
	}
	for _, c := range rt.byFirst[string(segs[0])] {
		if c.matchPath(segs) {
			if string(method) == c.method {
				return c, true
			}
			pathKnown = true
		}
	}
	return nil, pathKnown
}

func (c *compiledRoute) matchPath(segs [][]byte) bool {
	if len(segs) != len(c.segs) {
		return false
	}
	for i, want := range c.segs {
		if want == "" && len(segs[i]) == 0 || want != "" && string(segs[i]) != want {
			return false
		}
	}
	return true
}

// allowed returns the methods the path segs has routes for, for an Allow header.
func (rt *router) allowed(segs [][]byte) string {
	var methods []string
	for _, c := range rt.byFirst[string(segs[0])] {
		if c.matchPath(segs) && !strings.Contains(strings.Join(methods, ","), c.method) {
			methods = append(methods, c.method)
			if c.method == "GET" {
				methods = append(methods, "HEAD")
			}
		}
	}
	return strings.Join(methods, ", ")
}
