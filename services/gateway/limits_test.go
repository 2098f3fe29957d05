package gateway_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/httplimit"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/services/gateway"
)

// TestSlowClients opens 500 connections from one address (127.0.0.2) that send their
// headers a byte at a time, and 50 that send a body a byte at a time: the gateway keeps
// no more than MaxConnsPerIP of them, closes those after the header or body timeout, and
// meanwhile answers another client (127.0.0.1) through the proxy as usual.
func TestSlowClients(t *testing.T) {
	if testing.Short() {
		t.Skip("needs RabbitMQ; skipped with -short")
	}
	upstream, _ := newEcho(t)
	const perIP, headerTimeout, readTimeout = 20, time.Second, 1500 * time.Millisecond
	base := startGateway(t, gateway.Config{Static: map[string]string{"product": upstream.URL},
		Limits: httplimit.Limits{ReadHeaderTimeout: headerTimeout, ReadTimeout: readTimeout, MaxConnsPerIP: perIP}})
	addr := strings.TrimPrefix(base, "http://")

	t.Run("headers", func(t *testing.T) {
		wait := testenv.Slowloris(t, addr, "127.0.0.2", "/product/products", testenv.SlowHeaders, 500)
		testenv.StayResponsive(t, base+"/product/products", headerTimeout+headerTimeout/2)
		testenv.CheckSlowClosed(t, wait(headerTimeout+5*time.Second), perIP, headerTimeout)
	})
	t.Run("body", func(t *testing.T) {
		wait := testenv.Slowloris(t, addr, "127.0.0.3", "/product/products", testenv.SlowBody, 50)
		testenv.StayResponsive(t, base+"/product/products", readTimeout)
		// The body's time runs from the end of the headers, which came at once.
		testenv.CheckSlowClosed(t, wait(readTimeout+5*time.Second), perIP, readTimeout)
	})
}

// TestHeaderLimits: headers larger than MaxHeaderBytes get 431; every answer, the
// proxied ones included, carries nosniff.
func TestHeaderLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("needs RabbitMQ; skipped with -short")
	}
	upstream, _ := newEcho(t)
	base := startGateway(t, gateway.Config{Static: map[string]string{"product": upstream.URL},
		Limits: httplimit.Limits{MaxHeaderBytes: 4 << 10}})
	for _, tc := range []struct {
		name, path string
		header     int // bytes of one extra header
		status     int
	}{
		{"proxied", "/product/products", 1 << 10, http.StatusOK},
		{"own", "/healthz", 0, http.StatusOK},
		{"unknown", "/nope", 0, http.StatusNotFound},
		{"headers too large", "/product/products", 5 << 10, http.StatusRequestHeaderFieldsTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, base+tc.path, nil)
			if tc.header > 0 {
				req.Header.Set("X-Padding", strings.Repeat("a", tc.header))
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("GET %s with a %d-byte header: got %d, want %d", tc.path, tc.header, resp.StatusCode, tc.status)
			}
			if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("GET %s: X-Content-Type-Options %q, want nosniff", tc.path, got)
			}
		})
	}
}
