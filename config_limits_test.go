package main

import (
	"strings"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/httplimit"
)

// TestLoadConfigLimits: the public servers' limits and the Secure cookie come from the
// environment, unset ones keep the defaults (zero), and bad values are all reported.
func TestLoadConfigLimits(t *testing.T) {
	cfg, err := loadConfig(mapEnv(map[string]string{"HTTP_READ_HEADER_TIMEOUT": "3s", "HTTP_IDLE_TIMEOUT": "1m",
		"HTTP_MAX_CONNS_PER_IP": "0", "COOKIE_SECURE": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	want := httplimit.Limits{ReadHeaderTimeout: 3 * time.Second, IdleTimeout: time.Minute, MaxConnsPerIP: httplimit.NoCap}
	if cfg.Limits != want || !cfg.SecureCookie {
		t.Errorf("got limits %+v, secure cookie %v; want %+v, true", cfg.Limits, cfg.SecureCookie, want)
	}
	if cfg, err := loadConfig(mapEnv(map[string]string{"HTTP_MAX_CONNS_PER_IP": "50"})); err != nil || cfg.Limits.MaxConnsPerIP != 50 || cfg.SecureCookie {
		t.Errorf("HTTP_MAX_CONNS_PER_IP=50: got %d, secure %v (%v); want 50, false", cfg.Limits.MaxConnsPerIP, cfg.SecureCookie, err)
	}

	_, err = loadConfig(mapEnv(map[string]string{"HTTP_READ_TIMEOUT": "soon", "HTTP_WRITE_TIMEOUT": "-1s",
		"HTTP_MAX_CONNS_PER_IP": "-3", "COOKIE_SECURE": "maybe"}))
	for _, name := range []string{"HTTP_READ_TIMEOUT", "HTTP_WRITE_TIMEOUT", "HTTP_MAX_CONNS_PER_IP", "COOKIE_SECURE"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("bad %s: got error %v, want one naming it", name, err)
		}
	}
}
