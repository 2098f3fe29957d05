package gateway

import (
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/testenv"
)

// clientIP believes X-Forwarded-For only from a trusted proxy, and then only the entries
// that trusted proxies added: a client cannot pass for another address.
func TestClientIP(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Redis; skipped with -short")
	}
	key, _ := auth.NewKey([]byte(strings.Repeat("k", 32)))
	s := newServer(nil, key, time.Second, slog.New(slog.DiscardHandler))
	closeAuth, err := s.setUpAuth(t.Context(), Config{RedisURL: testenv.RedisURL(), TrustedProxies: []string{"10.0.0.0/8", "192.0.2.7"}})
	if err != nil {
		t.Fatalf("set up auth (is Redis running? start it with `redis-server --daemonize yes`): %v", err)
	}
	defer closeAuth()
	for _, tt := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"a client without a header", "203.0.113.5", nil, "203.0.113.5"},
		{"a client that claims another address", "203.0.113.5", []string{"198.51.100.1"}, "203.0.113.5"},
		{"a trusted proxy (the storefront) for a browser", "10.1.2.3", []string{"198.51.100.1"}, "198.51.100.1"},
		{"a browser that claims an address, through the proxy", "10.1.2.3", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1"},
		{"two trusted proxies", "192.0.2.7", []string{"198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"headers split over lines", "192.0.2.7", []string{"6.6.6.6", "198.51.100.1", "10.9.9.9"}, "198.51.100.1"},
		{"a trusted proxy without a header", "10.1.2.3", nil, "10.1.2.3"},
		{"a trusted proxy with garbage", "10.1.2.3", []string{"not an address"}, "10.1.2.3"},
		{"a trusted proxy with only trusted entries", "10.1.2.3", []string{"10.4.4.4"}, "10.1.2.3"},
	} {
		var ctx fasthttp.RequestCtx
		var req fasthttp.Request
		for _, v := range tt.xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP(tt.peer), Port: 40000}, nil)
		if got := s.clientIP(&ctx).String(); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, got, tt.want)
		}
	}
}

// A bad TrustedProxies entry stops the gateway at start, naming the setting.
func TestTrustedProxiesInvalid(t *testing.T) {
	key, _ := auth.NewKey([]byte(strings.Repeat("k", 32)))
	s := newServer(nil, key, time.Second, slog.New(slog.DiscardHandler))
	if _, err := s.setUpAuth(t.Context(), Config{TrustedProxies: []string{"10.0.0.0/33"}}); err == nil || !strings.Contains(err.Error(), "trusted proxies") {
		t.Errorf("TrustedProxies 10.0.0.0/33: got %v, want an error about the trusted proxies", err)
	}
}
