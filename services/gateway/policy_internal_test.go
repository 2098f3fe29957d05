package gateway

import (
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/testenv"
)

// TestRouterMatchesEveryRoute checks that each route of the policy is reached by a path of
// its own shape, and not shadowed by another.
func TestRouterMatchesEveryRoute(t *testing.T) {
	rt := newRouter(policy)
	for _, r := range policy {
		path := pathParam.ReplaceAllString(r.pattern, "x1")
		var buf [maxSegments][]byte
		segs, ok := splitPath([]byte(path), buf[:0])
		if !ok {
			t.Fatalf("%s: too many segments", path)
		}
		got, _ := rt.match([]byte(r.method), segs)
		if got == nil || got.route != r {
			t.Errorf("%s %s: got route %v, want %s %s", r.method, path, got, r.method, r.pattern)
		}
	}
}

func TestNewRouterRejectsBadTables(t *testing.T) {
	for name, routes := range map[string][]route{
		"overlap":        {{"GET", "/a/{x}", anyone}, {"GET", "/a/b", manager}},
		"no slash":       {{"GET", "a", anyone}},
		"empty segment":  {{"GET", "/a//b", anyone}},
		"missing param":  {{"GET", "/a/{x}", selfOrManager("user")}},
		"param first":    {{"GET", "/{service}/x", anyone}},
		"too many parts": {{"GET", "/a/b/c/d/e/f/g/h/i", anyone}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("newRouter with %s %v: got no panic, want one", name, routes)
				}
			}()
			newRouter(routes)
		}()
	}
}

// benchmarkRoute measures routing and authorizing one request, without the proxying;
// with revocations, checking them in a real Redis (cached as the gateway does).
func benchmarkRoute(b *testing.B, method, path, authorization string, revocations ...bool) {
	key, _ := auth.NewKey([]byte(strings.Repeat("k", 32)))
	s := &server{routes: newRouter(policy), tokenKey: key, tokens: &tokenCache{claims: map[string]auth.Claims{}},
		logger: slog.New(slog.DiscardHandler)}
	if len(revocations) > 0 {
		closeAuth, err := s.setUpAuth(b.Context(), Config{RedisURL: testenv.RedisURL(), RevocationPrefix: testenv.Name(b) + ":"})
		if err != nil {
			b.Fatal(err)
		}
		defer closeAuth()
	}
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(path)
	if authorization != "" {
		token := key.Sign(auth.Claims{User: "ann", Role: auth.Manager, ExpiresAt: time.Now().Add(time.Hour)})
		ctx.Request.Header.Set("Authorization", "Bearer "+token)
	}
	b.ReportAllocs()
	for b.Loop() {
		var buf [maxSegments][]byte
		segs, _ := splitPath(ctx.Path(), buf[:0])
		r, _ := s.routes.match(ctx.Method(), segs)
		if r == nil || !s.authorize(&ctx, r, segs) {
			b.Fatalf("%s %s: not allowed", method, path)
		}
		// What authorize set, as a client's X-Msdemo-* headers would be stripped next time.
		ctx.Request.Header.Del("X-Msdemo-User")
		ctx.Request.Header.Del("X-Msdemo-Role")
	}
}

func BenchmarkRouteAnonymous(b *testing.B) {
	benchmarkRoute(b, "GET", "/product/products/abc", "")
}

func BenchmarkRouteWithToken(b *testing.B) {
	benchmarkRoute(b, "GET", "/customer/users/ann/credit", "token")
}

func BenchmarkRouteWithTokenAndRevocations(b *testing.B) {
	benchmarkRoute(b, "GET", "/customer/users/ann/credit", "token", true)
}

func TestTokenCache(t *testing.T) {
	key, _ := auth.NewKey([]byte(strings.Repeat("k", 32)))
	other, _ := auth.NewKey([]byte(strings.Repeat("o", 32)))
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	claims := auth.Claims{User: "ann", Role: auth.Customer, ExpiresAt: now.Add(time.Hour)}
	token := key.Sign(claims)
	forged := other.Sign(claims)
	c := &tokenCache{claims: map[string]auth.Claims{}}
	for _, tc := range []struct {
		name    string
		token   string
		at      time.Time
		wantErr error
	}{
		{"first use", token, now, nil},
		{"cached", token, now.Add(time.Minute), nil},
		{"cached, expired since", token, now.Add(time.Hour), auth.ErrExpiredToken},
		{"same claims, another key", forged, now, auth.ErrInvalidToken},
		{"same claims, another key, again", forged, now, auth.ErrInvalidToken},
	} {
		got, err := c.verify(key, []byte(tc.token), tc.at)
		if err != tc.wantErr || err == nil && got != claims {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tc.name, got, err, claims, tc.wantErr)
		}
	}
	if len(c.claims) != 1 {
		t.Errorf("cache holds %d tokens, want 1", len(c.claims))
	}
}

func TestBearerToken(t *testing.T) {
	for header, want := range map[string]string{
		"Bearer abc":   "abc",
		"bearer  abc ": "abc",
		"Basic abc":    "",
		"Bearer":       "",
		"abc":          "",
	} {
		if got := string(bearerToken([]byte(header))); got != want || got != auth.BearerToken(header) {
			t.Errorf("bearerToken(%q): got %q, want %q as auth.BearerToken", header, got, want)
		}
	}
}

// TestPolicyRoutesToKnownServices: every route goes to a service the registry lists, or is
// the gateway's own, and every service with an event queue has its dead-letter routes.
func TestPolicyRoutesToKnownServices(t *testing.T) {
	own := []string{"healthz", "registry", "openapi.yaml"}
	deadLetters := map[string]int{}
	for _, c := range newRouter(policy).byFirst {
		for _, r := range c {
			if !slices.Contains(services, r.service) && !slices.Contains(own, r.service) {
				t.Errorf("%s %s: %q is neither a service of registry.Upstreams nor the gateway's own", r.method, r.pattern, r.service)
			}
			if strings.HasPrefix(r.pattern, "/"+r.service+"/dead-letters") {
				deadLetters[r.service]++
			}
		}
	}
	for _, s := range registry.Subscribers() {
		if deadLetters[s] != 4 {
			t.Errorf("%s: got %d dead-letter routes, want 4", s, deadLetters[s])
		}
	}
}
