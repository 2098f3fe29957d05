package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/systest"
)

// lockedBuffer collects a process's output for the test to read while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// shopNamespace is an MSDEMO_NAMESPACE of the test's own (short, lower case), so that a
// shop the test starts shares no database or Redis key with a developer's `go run .` nor
// with another test; the order, accounting and product databases it names are dropped
// when the test and its other cleanups have ended (call it before starting processes).
func shopNamespace(t *testing.T) string {
	name := testenv.Name(t)
	namespace := "t" + name[len(name)-8:]
	t.Cleanup(func() {
		for _, db := range []string{"order", "accounting", "product"} {
			_ = postgres.Drop(context.Background(), testenv.PostgresURL(), namespace+"_"+db)
		}
	})
	return namespace
}

// The shop as a newcomer starts it: the msdemo binary with an empty DATA_DIR and no other
// settings than its ports (and a RabbitMQ vhost and a namespace of the test's own: the
// default one is a developer's shop, whose read models the test would take over). Every component is
// healthy within 10 s, the REST API answers through the gateway, and SIGTERM stops the
// process cleanly within 10 s.
func TestAllInOneStartsAndStops(t *testing.T) {
	t.Parallel()
	bin := systest.Binary(t)
	dataDir := t.TempDir()
	env := []string{"DATA_DIR=" + dataDir, "RABBITMQ_URL=" + testenv.VHost(t), "MSDEMO_NAMESPACE=" + shopNamespace(t),
		"LOG_LEVEL=info", "METRICS_ADDR="}
	urls := map[string]string{}
	for name := range components {
		addr := testenv.FreeAddr(t)
		env = append(env, strings.ToUpper(name)+"_ADDR="+addr)
		urls[name] = "http://" + addr
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), env...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("msdemo output:\n%s", out.String())
		}
	})

	for name, url := range urls {
		testenv.WaitHealthy(t, url+"/healthz", 10*time.Second-time.Since(start))
		t.Logf("%s healthy after %s", name, time.Since(start).Round(time.Millisecond))
	}

	// The REST API through the gateway, as curl would call it, with a manager's token
	// signed by the key the process keeps in DATA_DIR.
	key, err := auth.LoadKey("", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	token := key.Sign(auth.Claims{User: "admin", Role: auth.Manager, ExpiresAt: time.Now().Add(time.Minute)})
	var resp *http.Response
	testenv.Eventually(t, 10*time.Second, "the gateway routes /eventstore/events", func() bool {
		req, _ := http.NewRequest(http.MethodGet, urls["gateway"]+"/eventstore/events", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return false
		}
		return true
	})
	var feed struct {
		Events []json.RawMessage `json:"events"`
	}
	err = json.NewDecoder(resp.Body).Decode(&feed)
	resp.Body.Close()
	if err != nil || feed.Events == nil {
		t.Fatalf("GET /eventstore/events: got %v (error %v), want {\"events\": [...]}", feed, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopAt := time.Now()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("msdemo exited with %v after SIGTERM, want exit status 0", err)
		}
		t.Logf("stopped %s after SIGTERM", time.Since(stopAt).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatalf("msdemo still running 10 s after SIGTERM")
	}
	if strings.Contains(out.String(), "panic") {
		t.Errorf("output mentions a panic:\n%s", out.String())
	}
}

// mapEnv is an os.LookupEnv over env.
func mapEnv(env map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env[name]
		return v, ok
	}
}

func TestUnknownTargetIsAnError(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"-target=nope"}, mapEnv(nil), &stderr)
	if err == nil || !strings.Contains(err.Error(), "unknown -target") {
		t.Fatalf("got %v, want an unknown -target error", err)
	}
}

func TestParseTargets(t *testing.T) {
	t.Parallel()
	known := []string{"eventstore", "gateway", "order", "product"}
	for _, tc := range []struct {
		target string
		want   []string
		err    string
	}{
		{target: "all", want: known},
		{target: "order", want: []string{"order"}},
		{target: "gateway,order, product", want: []string{"gateway", "order", "product"}},
		{target: "product,eventstore", want: []string{"product", "eventstore"}},
		{target: "order,nope", err: `unknown -target "nope"`},
		{target: "order,order", err: `names "order" twice`},
		{target: "order,all", err: `"all" cannot be listed`},
		{target: "order,", err: `unknown -target ""`},
		{target: "", err: `unknown -target ""`},
	} {
		got, err := parseTargets(tc.target, known)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseTargets(%q): got %v, %v; want an error with %q", tc.target, got, err, tc.err)
		case tc.err == "" && (err != nil || !slices.Equal(got, tc.want)):
			t.Errorf("parseTargets(%q): got %v, %v; want %v", tc.target, got, err, tc.want)
		}
	}
}

// ADVERTISE_URL names one address: a process that runs two components behind the gateway
// with it set would announce both there, so it does not start.
func TestAdvertiseURLWithTwoRoutedTargetsIsAnError(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ADVERTISE_URL": "http://10.0.0.7:6004", "DATA_DIR": t.TempDir(), "METRICS_ADDR": ""}
	var stderr bytes.Buffer
	err := run(t.Context(), []string{"-target=product,order"}, mapEnv(env), &stderr)
	if err == nil || !strings.Contains(err.Error(), "ADVERTISE_URL") || !strings.Contains(err.Error(), "product, order") {
		t.Fatalf("got %v, want an error naming ADVERTISE_URL and the two components", err)
	}
	cfg := config{AdvertiseURL: "http://10.0.0.7:6004"}
	if err := cfg.checkAdvertiseURL([]string{"gateway", "product", "storefront"}); err != nil {
		t.Errorf("one routed component with the gateway and a site: got %v, want no error", err)
	}
}

// A zero or short MSDEMO_TOKEN_KEY stops every component at start, before it touches a
// server, with an error that names the variable.
func TestBadTokenKeyIsAnError(t *testing.T) {
	t.Parallel()
	for _, key := range []string{strings.Repeat("00", 32), strings.Repeat("ab", 31), strings.Repeat("ab", 32) + ",00"} {
		for _, target := range append(componentNames(), "all") {
			env := map[string]string{"MSDEMO_TOKEN_KEY": key, "DATA_DIR": t.TempDir(), "METRICS_ADDR": ""}
			var stderr bytes.Buffer
			err := run(t.Context(), []string{"-target=" + target}, mapEnv(env), &stderr)
			if err == nil || !strings.Contains(err.Error(), "MSDEMO_TOKEN_KEY") {
				t.Errorf("-target=%s with MSDEMO_TOKEN_KEY=%s: got %v, want an error naming MSDEMO_TOKEN_KEY", target, key, err)
			}
		}
	}
}
